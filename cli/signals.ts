/** Which signal stopped the process, for the exit code and for the run's RunInterrupted event. */
let received: "SIGINT" | "SIGTERM" | undefined

export const noteSignal = (s: "SIGINT" | "SIGTERM"): void => {
  received ??= s
}

export const receivedSignal = (): "SIGINT" | "SIGTERM" | undefined => received

export const interruptReason = (): string =>
  received === "SIGTERM"
    ? "stopped by SIGTERM"
    : received === "SIGINT"
      ? "stopped by SIGINT (Ctrl-C)"
      : "interrupted"
