// What a CLI command is: its flags (with the text `--help` shows) and what it runs. main.ts turns
// each into a commander command; adding a command is one file exporting a Command plus one line in
// main.ts's COMMANDS list.

/** One flag. Values reach `run` as the strings typed (booleans as true); commands parse them with
 * the helpers in flags.ts, so numbers are parsed one way everywhere. */
export interface Flag {
  /** Long name without dashes: 'max-tokens' is --max-tokens and values['max-tokens']. */
  name: string;
  short?: string;
  /** Placeholder of the value ('N', 'FILE'); absent for a boolean flag. */
  arg?: string;
  description: string;
  /** Shown in --help as "default: ..."; documentation only (the API applies its own defaults).
   * 'required' for flags a command cannot run without. */
  default: string;
  /** A value shown in --help as "e.g. ...". */
  example?: string;
  /** The flag may be given several times (values collected into an array). */
  multiple?: boolean;
  /** The API option names this flag sets: error messages that name them are rewritten to name the flag. */
  api?: string | string[];
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  json: boolean;
  /** Tells on stderr that the long work of an interruptible command starts (and what Ctrl-C does). */
  started(what: string): void;
  /** Aborted by the first Ctrl-C (commands marked `interruptible`). */
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  /** Positional arguments in commander's syntax ('[model]', '[in] [out]'); none by default. */
  positionals?: string;
  flags: Flag[];
  /** Example command lines for --help. */
  examples: string[];
  /** The first Ctrl-C aborts io.signal and the command prints what it has (exit 130); without this,
   * Ctrl-C ends the process as usual. */
  interruptible?: boolean;
  run(values: Values, positionals: string[], io: Io): Promise<number>;
}
