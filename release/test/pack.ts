/**
 * Packing a workspace package as `pnpm publish` would (its `prepack` builds `dist/` first), shared
 * by the release checks.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync } from "node:fs"
import { join, resolve } from "node:path"

/** The repository's root. */
export const root = resolve(import.meta.dirname, "..", "..")

/** A tool installed at the root (`node_modules/.bin`). */
export const bin = (name: string) => join(root, "node_modules", ".bin", name)

/**
 * Runs `file` and resolves with its stdout; on failure the error message carries the command, its
 * stdout and stderr. Asynchronous, so a long install does not block the test worker.
 */
export const run = (
  file: string,
  args: ReadonlyArray<string>,
  cwd = root,
  options: { readonly env?: NodeJS.ProcessEnv; readonly timeout?: number } = {},
): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options },
      (error, stdout, stderr) => {
        if (error === null) return resolve(stdout)
        const status = typeof error.code === "number" ? error.code : "none"
        reject(
          new Error(
            [
              `\`${[file, ...args].join(" ")}\` in ${cwd} failed (status ${status}, signal ${error.signal ?? "none"})`,
              `--- stdout ---\n${stdout}`,
              `--- stderr ---\n${stderr}`,
            ].join("\n"),
            { cause: error },
          ),
        )
      },
    ).stdin?.end()
  })

/** Packs the package in `folder` (relative to the root) into a fresh folder under `out`; returns the tarball's path. */
export const pack = async (folder: string, out: string): Promise<string> => {
  const dest = mkdtempSync(join(out, "tgz-"))
  await run("pnpm", ["pack", "--pack-destination", dest], join(root, folder))
  const [tarball] = readdirSync(dest).filter((f) => f.endsWith(".tgz"))
  if (tarball === undefined) throw new Error(`pnpm pack wrote no tarball for ${folder}`)
  return join(dest, tarball)
}
