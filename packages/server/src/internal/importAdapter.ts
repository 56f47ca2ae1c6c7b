/** Whether a failed `import()` says that `packageName` itself (not one of its own dependencies) cannot be found. */
export const isPackageNotFound = (error: unknown, packageName: string): boolean => {
  if (typeof error !== "object" || error === null) return false
  const { code, message } = error as { code?: unknown; message?: unknown }
  return (
    (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") &&
    typeof message === "string" &&
    (message.includes(`'${packageName}'`) || message.includes(`"${packageName}"`))
  )
}
