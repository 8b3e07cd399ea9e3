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
// Answers are read so that Ctrl-C ends a prompt's wait (a plain readLine() never returns on it).
let input = TerminalInput(descriptor: STDIN_FILENO)
let frontend = Frontend(
  environment: Frontend.Environment(
    output: FileOutput.standardOutput, errors: FileOutput.standardError,
    inputIsTerminal: isatty(STDIN_FILENO) == 1, variables: ProcessInfo.processInfo.environment,
    readLine: { input.readLine() }, executableDirectory: executableDirectory),
  runner: runner)

// A parent may have started us with signals blocked (a thread pool's mask survives exec):
// Ctrl-C and SIGTERM must reach us, so start from an empty mask.
var emptyMask = sigset_t()
sigemptyset(&emptyMask)
pthread_sigmask(SIG_SETMASK, &emptyMask, nil)

/// Whether `signal` is ignored (SIGHUP under `nohup`): watching it would undo that.
func isIgnored(_ signal: Int32) -> Bool {
  var current = sigaction()
  guard sigaction(signal, nil, &current) == 0 else { return false }
  return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self)
    == unsafeBitCast(SIG_IGN, to: Int.self)
}

// Signal sources are installed before any child starts (see docs/architecture.md). The terminal
// closed (SIGHUP) ends a run as Ctrl-C does: children stopped, checkpoint and lock left in order.
let signals = SignalWatcher(signals: [SIGINT, SIGTERM] + (isIgnored(SIGHUP) ? [] : [SIGHUP])) {
  signal in
  let reason =
    switch signal {
    case SIGINT: "Ctrl-C"
    case SIGHUP: "the terminal was closed"
    default: "SIGTERM"
    }
  if frontend.interrupt(reason: reason) {
    input.interrupt()  // a prompt waiting for an answer returns at once
    runner.interruptChildren()
  } else {
    exit(ExitStatus.interrupted)
  }
}

let status = await frontend.run(Array(CommandLine.arguments.dropFirst()))
signals.cancel()
exit(status)
