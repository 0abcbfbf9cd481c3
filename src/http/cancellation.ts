// Why a request stops early (the caller left, a timeout fired), told to whoever registered for it.
// Cheaper than an AbortController per request on the hot path (callbacks in an array, no EventTarget);
// an AbortSignal is made only for the layers that ask for one.
export class Cancellation {
  #cancelled = false;
  #reason: unknown;
  #callbacks: ((reason: unknown) => void)[] | undefined;
  #controller: AbortController | undefined;
  #unlink: (() => void) | undefined;

  get cancelled(): boolean {
    return this.#cancelled;
  }

  get reason(): unknown {
    return this.#reason;
  }

  cancel(reason: unknown): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const callbacks = this.#callbacks;
    this.#callbacks = undefined;
    for (const callback of callbacks ?? []) callback(reason);
  }

  /** Calls `callback` on cancellation (at once when already cancelled); returns a function that unregisters it. */
  onCancel(callback: (reason: unknown) => void): () => void {
    if (this.#cancelled) {
      callback(this.#reason);
      return () => {};
    }
    (this.#callbacks ??= []).push(callback);
    return () => {
      const index = this.#callbacks?.indexOf(callback) ?? -1;
      if (index !== -1) this.#callbacks!.splice(index, 1);
    };
  }

  /** A cancellation that follows this one and can also be cancelled on its own (a timeout's). */
  child(): Cancellation {
    const child = new Cancellation();
    child.#unlink = this.onCancel((reason) => child.cancel(reason));
    return child;
  }

  /** Stops following the parent (when the child's work is over). */
  release(): void {
    this.#unlink?.();
    this.#unlink = undefined;
  }

  /** The same cancellation as a standard AbortSignal, for APIs that take one. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#cancelled) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }
}
