// Why a request stops early (the caller left, a timeout fired), told to whoever registered for it.
// Cheaper than an AbortController per request on the hot path (callbacks in an array, no EventTarget);
// an AbortSignal is made only for the layers that ask for one.
export class Cancellation {
  #cancelled = false;
  #reason: unknown;
  #callbacks: ((reason: unknown) => void)[] | undefined;
  #controller: AbortController | undefined;
  /** Children follow their parent through these two fields: no closure per child (two per request). */
  #children: Cancellation[] | undefined;
  #parent: Cancellation | undefined;

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
    const children = this.#children;
    this.#children = undefined;
    if (children) for (const child of children) child.cancel(reason);
    const callbacks = this.#callbacks;
    this.#callbacks = undefined;
    if (callbacks) for (const callback of callbacks) callback(reason);
  }

  /** Calls `callback` on cancellation (at once when already cancelled); returns a function that unregisters it. */
  onCancel(callback: (reason: unknown) => void): () => void {
    if (this.#cancelled) {
      callback(this.#reason);
      return () => {};
    }
    this.#callbacks = append(this.#callbacks, callback);
    return () => {
      if (this.#callbacks) remove(this.#callbacks, callback);
    };
  }

  /** A cancellation that follows this one and can also be cancelled on its own (a timeout's). */
  child(): Cancellation {
    const child = new Cancellation();
    if (this.#cancelled) child.cancel(this.#reason);
    else {
      child.#parent = this;
      this.#children = append(this.#children, child);
    }
    return child;
  }

  /** Stops following the parent (when the child's work is over). */
  release(): void {
    const parent = this.#parent;
    this.#parent = undefined;
    const siblings = parent === undefined ? undefined : parent.#children;
    if (siblings) remove(siblings, this);
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

/** `list` with `item` pushed; a new list is a literal with it, not [] then push: no growing of an empty array per request. */
function append<T>(list: T[] | undefined, item: T): T[] {
  if (!list) return [item];
  list.push(item);
  return list;
}

/**
 * Removes `item` from `list` in place, searching from the end: callbacks and children end in about the
 * order they began, so it is nearly always the last or the first. Not splice: it makes an array of
 * what it removed.
 */
function remove<T>(list: T[], item: T): void {
  const index = list.lastIndexOf(item);
  if (index === -1) return;
  for (let i = index + 1; i < list.length; i++) list[i - 1] = list[i]!;
  list.length--;
}
