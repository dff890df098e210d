// A progress bar with ETA on stderr (cli-progress) for the long commands: only when stderr is a
// terminal and the output is not --json, so pipes, logs and machine output never see it.
import { MultiBar, Presets } from 'cli-progress';
import type { Io } from './command';

export interface Progress {
  /** The library's `onProgress(done, total)` option: undefined when no bar is shown. */
  onProgress?: (done: number, total: number) => void;
  /** A line of text for stderr, written above the bar while it shows. */
  log(text: string): void;
  /** Ends the bar (idempotent); call it in `finally`. */
  stop(): void;
}

const MIB = 2 ** 20;

/** `unit` names what is counted; 'bytes' shows MiB. */
export function progress(io: Io, label: string, unit: 'tokens' | 'bytes' | 'steps'): Progress {
  if (io.json || !process.stderr.isTTY) return { log: (text) => io.err(text), stop: () => {} };
  const bars = new MultiBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit === 'bytes' ? 'MiB' : unit} | ETA {eta_formatted}`,
    formatValue: (v, _o, type) => (unit === 'bytes' && (type === 'value' || type === 'total') ? (v / MIB).toFixed(1) : String(v)),
    barsize: 30,
    hideCursor: true,
    etaBuffer: 20,
  }, Presets.shades_classic);
  let bar: ReturnType<MultiBar['create']> | undefined, stopped = false;
  return {
    onProgress(done, total) {
      if (stopped) return;
      if (!bar) bar = bars.create(total, done);
      else {
        if (bar.getTotal() !== total) bar.setTotal(total);
        bar.update(done);
      }
    },
    log(text) {
      if (bar && !stopped) bars.log(text);
      else io.err(text);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (!bar) return;
      bars.update();  // writes the lines logged since the last redraw
      bars.stop();
    },
  };
}
