/**
 * Streaming detokenisation for generation: text appears as soon as each character is
 * complete, even when a byte-level BPE token holds only part of a character's UTF-8 bytes.
 */

export interface DecodeOptions {
  /** Drop the tokenizer's special ids before decoding. Default false. */
  skipSpecialTokens?: boolean;
}

/**
 * Incremental detokenisation (the scheme of text-generation-inference): decode a short window
 * of recent ids, and emit only text that extends what the window already produced and does
 * not end in U+FFFD — a byte-level piece that stops mid-character is held back until the
 * token completing it arrives. The pushed chunks concatenate to decode(allIds).
 *
 * @example
 *   const s = tok.decodeStream();
 *   let text = "";
 *   for (const id of ids) text += s.push(id);
 *   text += s.flush();
 */
export class StreamDecoder {
  /** All text emitted so far (for stop-string checks). */
  text = "";
  private ids: number[] = [];
  private prefix = 0;
  private read = 0;

  constructor(
    private readonly tok: { decode(ids: readonly number[], opts?: DecodeOptions): string },
    private readonly opts: DecodeOptions = {},
  ) {}

  /** Feeds one id; returns the text it completes ("" while a character is still partial). */
  push(id: number): string {
    this.ids.push(id);
    return this.step(false);
  }

  /** Emits anything held back; bytes that never formed a character come out as U+FFFD. */
  flush(): string {
    return this.step(true);
  }

  private step(force: boolean): string {
    const prefixText = this.tok.decode(this.ids.slice(this.prefix, this.read), this.opts);
    const newText = this.tok.decode(this.ids.slice(this.prefix), this.opts);
    if (newText.length <= prefixText.length || (!force && newText.endsWith("\uFFFD"))) return "";
    const delta = newText.slice(prefixText.length);
    // Keep only the ids that the next window needs.
    this.ids = this.ids.slice(this.read);
    this.prefix = 0;
    this.read = this.ids.length;
    this.text += delta;
    return delta;
  }
}
