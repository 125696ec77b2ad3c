import type { RemoteContext } from '../context/remote-context.js';

export interface Pause {
  problem: string;
  since: string;
  // Not a fault: a new remote XO has not written to yet, where nothing may be written before XO sets it up.
  waitingForXo: boolean;
  // Refused for its key file: a fault, yet tried again at each look as a new remote is, so a fixed key protects it.
  keyRefused?: boolean;
}

// The remotes whose protection is paused (gone away, not set up by XO yet, or refused for its key file): written by the remotes and health
// services, read by whatever acts on a remote.
export class RemotePauses {
  readonly #paused = new Map<RemoteContext, Pause>();
  #outages = 0;

  // How many times a remote became unavailable since start: each is an error line, and status counts it as one.
  get outages(): number {
    return this.#outages;
  }

  isPaused(remote: RemoteContext): boolean {
    return this.#paused.has(remote);
  }

  pause(remote: RemoteContext, pause: Pause): void {
    if (!pause.waitingForXo && this.#paused.get(remote)?.waitingForXo !== false) this.#outages++;
    this.#paused.set(remote, pause);
  }

  resume(remote: RemoteContext): void {
    this.#paused.delete(remote);
  }

  // To activate at each look: new (XO has not written there yet), or refused for its key file.
  awaitsActivation(remote: RemoteContext): boolean {
    const pause = this.#paused.get(remote);
    return pause?.waitingForXo === true || pause?.keyRefused === true;
  }

  why(remote: RemoteContext): Pause | undefined {
    return this.#paused.get(remote);
  }
}
