import Foundation
import RunbookEngine
import RunbookProcess
import UniSyncRunbook

extension Frontend {
  /// `runbook task run SERVICE -- CMD...`: the operator's command as a one-off task of the
  /// service's current task definition (``TaskRun``); the exit status is its container's exit
  /// code, or 1 when it did not start or stopped without one. Asks first, as every write does
  /// (`--yes` without a terminal). Keeps nothing in the checkpoint.
  func task(_ context: Context, parsed: ParsedCommandLine, style: Style, argv: [String])
    async throws -> Int32
  {
    guard parsed.arguments.first == "run", parsed.arguments.count >= 2 else {
      throw UsageError("usage: runbook task run SERVICE -- CMD...")
    }
    let service = parsed.arguments[1]
    let command = Array(parsed.arguments.dropFirst(2))
    let yes = parsed.flag("yes")
    if !yes && !environment.inputIsTerminal {
      throw UsageError(
        "'task run' runs a task in AWS and needs confirmation: run it in a terminal, or pass --yes")
    }
    let reporter = ConsoleReporter(
      output: environment.output, errors: environment.errors, style: style,
      verbose: parsed.flag("verbose"))
    let prompter = TerminalPrompter(
      output: environment.output, style: style, readLine: environment.readLine)
    let engine = context.engine(
      runner: runner, reporter: reporter, prompter: prompter,
      options: RunOptions(assumeYes: yes, commandLine: commandLine(argv)))
    currentEngine.withLock { $0 = engine }
    defer { currentEngine.withLock { $0 = nil } }
    let outcome: TaskRun.Outcome
    do {
      outcome = try await TaskRun.run(engine, service: service, command: command)
      reporter.finish()
    } catch {
      reporter.finish()
      throw error
    }
    let task = outcome.taskArn.split(separator: "/").last.map(String.init) ?? outcome.taskArn
    guard let code = outcome.exitCode else {
      environment.errors.write(
        "error: task \(task) stopped without an exit code: \(outcome.summary) (its container did not run to an end)\n"
      )
      return ExitStatus.stepFailed
    }
    environment.output.write("task \(task): \(outcome.summary)\n")
    // An exit status is one byte: 256 would read as success.
    return code >= 0 && code <= 255 ? Int32(code) : ExitStatus.stepFailed
  }
}
