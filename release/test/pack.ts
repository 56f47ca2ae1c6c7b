/**
 * Packing a workspace package as `pnpm publish` would (its `prepack` builds `dist/` first), shared
 * by the release checks.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync } from "node:fs"
import { join, resolve } from "node:path"

/** The repository's root. */
export const root = resolve(import.meta.dirname, "..", "..")

/** A tool installed at the root (`node_modules/.bin`). */
export const bin = (name: string) => join(root, "node_modules", ".bin", name)

/** Runs `file` and returns its stdout; on failure the error message carries the command, its stdout and stderr. */
export const run = (
  file: string,
  args: ReadonlyArray<string>,
  cwd = root,
  options: { readonly env?: NodeJS.ProcessEnv; readonly timeout?: number } = {},
): string => {
  try {
    return execFileSync(file, args, {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
      ...options,
    })
  } catch (error) {
    const e = error as { status?: number | null; signal?: string | null; stdout?: string; stderr?: string }
    throw new Error(
      [
        `\`${[file, ...args].join(" ")}\` in ${cwd} failed (status ${e.status ?? "none"}, signal ${e.signal ?? "none"})`,
        `--- stdout ---\n${e.stdout ?? ""}`,
        `--- stderr ---\n${e.stderr ?? ""}`,
      ].join("\n"),
      { cause: error },
    )
  }
}

/** Packs the package in `folder` (relative to the root) into a fresh folder under `out`; returns the tarball's path. */
export const pack = (folder: string, out: string): string => {
  const dest = mkdtempSync(join(out, "tgz-"))
  run("pnpm", ["pack", "--pack-destination", dest], join(root, folder))
  const [tarball] = readdirSync(dest).filter((f) => f.endsWith(".tgz"))
  if (tarball === undefined) throw new Error(`pnpm pack wrote no tarball for ${folder}`)
  return join(dest, tarball)
}
