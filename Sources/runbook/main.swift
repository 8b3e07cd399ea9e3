import Foundation
import RunbookKit

#if canImport(Glibc)
  import Glibc
#endif

// The executable only wires the library to the process: streams, signals and the exit status.
let runner = ProcessRunner()
let frontend = Frontend(
  environment: Frontend.Environment(
    output: FileOutput.standardOutput, errors: FileOutput.standardError,
    inputIsTerminal: isatty(STDIN_FILENO) == 1, variables: ProcessInfo.processInfo.environment),
  runner: runner)

// Signal sources are installed before any child starts (see docs/architecture.md).
let signals = SignalWatcher(signals: [SIGINT, SIGTERM]) { signal in
  let reason = signal == SIGINT ? "Ctrl-C" : "SIGTERM"
  if frontend.interrupt(reason: reason) {
    runner.interruptChildren()
  } else {
    exit(ExitStatus.interrupted)
  }
}

let status = await frontend.run(Array(CommandLine.arguments.dropFirst()))
signals.cancel()
exit(status)
