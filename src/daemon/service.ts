// One concern of the daemon: start() may fail (the daemon then stops); stop() is safe to call at any time, more than
// once, and even while start() is still running, and nothing of the service runs after it returns.
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
