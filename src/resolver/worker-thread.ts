// The resolver worker's program: host.ts starts this file as a worker thread
// (worker.ts says why a thread) with its WorkerConfig as workerData.
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerConfig } from './protocol.js';
import { runResolverWorker } from './worker.js';

if (parentPort === null) throw new Error('worker-thread.js runs as a worker thread started by the resolver host');
await runResolverWorker(parentPort, workerData as WorkerConfig);
