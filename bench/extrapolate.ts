// Straight-line extrapolation for the benchmarks that cannot measure their
// largest size: the line through the two measured points with the largest x.
// Whatever uses it must print the result as an extrapolation, never as a
// measurement.
export interface Point {
  readonly x: number;
  readonly y: number;
}

export function linearAt(points: readonly Point[], x: number): number {
  const sorted = [...points].sort((a, b) => a.x - b.x);
  if (sorted.length === 0) throw new Error('extrapolate: no measured point');
  const b = sorted[sorted.length - 1]!;
  // One point: proportional, through the origin.
  if (sorted.length === 1) return b.x === 0 ? b.y : (b.y * x) / b.x;
  const a = sorted[sorted.length - 2]!;
  if (a.x === b.x) throw new Error(`extrapolate: two points at x = ${a.x}`);
  return b.y + ((b.y - a.y) / (b.x - a.x)) * (x - b.x);
}
