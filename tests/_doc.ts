/**
 * Runs the JSDoc examples of source files with `deno test --doc` in a subprocess from the repository
 * root (examples use root-relative fixture paths), so the suite proves every example still runs.
 * `deno task test` cannot simply add `--doc`: that would type-check and run the examples of every file
 * in the project, well over a minute more on two cores.
 * @module
 */

const ROOT = new URL("../", import.meta.url);

/** Runs `deno test -A --doc <files>` (paths relative to the repository root); throws with its output on failure. */
export async function runDocTests(files: readonly string[]): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--doc", ...files],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  const summary = output.match(/^(ok|FAILED) \| \d+ passed.*$/m)?.[0];
  if (code !== 0 || !summary?.startsWith("ok")) {
    throw new Error(`deno test --doc ${files.join(" ")} exited with ${code}:\n${output.slice(-6000)}`);
  }
}
