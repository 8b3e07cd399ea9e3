import Foundation
import RunbookCLI
import RunbookProcess

#if canImport(Glibc)
  import Glibc
#endif

// The executable only wires the library to the process: streams, signals, where it is installed
// and the exit status.

// The folder of this executable, where `swift build` and an installation put the programs that
// come with it (`runbook-health-probe`, which verify runs): /proc/self/exe names the executable
// itself, whatever PATH, symlink or relative path started it. Where there is no /proc (macOS),
// Foundation's answer is used; when neither says, the library looks on PATH only.
let executableDirectory =
  ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
  ?? Bundle.main.executablePath)
  .map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }

let runner = ProcessRunner()
let frontend = Frontend(
  environment: Frontend.Environment(
    output: FileOutput.standardOutput, errors: FileOutput.standardError,
    inputIsTerminal: isatty(STDIN_FILENO) == 1, variables: ProcessInfo.processInfo.environment,
    executableDirectory: executableDirectory),
  runner: runner)

// A parent may have started us with signals blocked (a thread pool's mask survives exec):
// Ctrl-C and SIGTERM must reach us, so start from an empty mask.
var emptyMask = sigset_t()
sigemptyset(&emptyMask)
pthread_sigmask(SIG_SETMASK, &emptyMask, nil)

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
