import Foundation
import RunbookProcess
import RunbookState
import Synchronization

/// Swift logic between commands (an HTTP probe, a rollout judged from `describe-services`, a task
/// definition derived from the current one), run as one action.
///
/// The body never starts a process itself: it runs ``Command`` values through its
/// ``ProcedureContext``, so every command is shown, written (masked) to the audit log, retried on
/// throttling and stopped by Ctrl-C like any other. `plan` shows the ``outline``: the commands it
/// runs, with `<PLACEHOLDERS>` for values it learns on the way, and notes for what is not a command.
package struct Procedure: Sendable, Hashable {
  /// One line of what `plan` shows.
  package enum Line: Sendable, Hashable {
    case command(Command)
    /// What the procedure does that is no command (`GET http://<ALB_DNS>/actuator/health`).
    case note(Argument)
  }

  /// Names the procedure (equality and plan use it).
  package var name: String
  package var outline: [Line]
  /// Exports the body reads from ``ProcedureContext/values``; the action runs after their producers.
  package var requires: [String]
  /// The work. Returns the value recorded for the action (its capture's export, when it has one);
  /// throws ``ProcedureFailure`` to fail the action with a reason.
  package var body: @Sendable (ProcedureContext) async throws -> String?

  package init(
    _ name: String, outline: [Line], requires: [String] = [],
    body: @escaping @Sendable (ProcedureContext) async throws -> String?
  ) {
    self.name = name
    self.outline = outline
    self.requires = requires
    self.body = body
  }

  /// The commands of the outline (their programs must be on PATH).
  package var commands: [Command] {
    outline.compactMap { if case .command(let command) = $0 { command } else { nil } }
  }

  package static func == (lhs: Procedure, rhs: Procedure) -> Bool {
    lhs.name == rhs.name && lhs.outline == rhs.outline && lhs.requires == rhs.requires
  }
  package func hash(into hasher: inout Hasher) {
    hasher.combine(name)
    hasher.combine(outline)
  }
}

/// Why a procedure failed, for the operator (the engine adds the step and action).
package struct ProcedureFailure: Error, Sendable, Hashable, CustomStringConvertible {
  package var reason: String
  /// The command that failed, as shown to people, when a command is the cause.
  package var command: String?
  package init(_ reason: String, command: String? = nil) {
    self.reason = reason
    self.command = command
  }
  package var description: String { reason }
}

/// What a procedure needs of the engine running it. (The engine is generic over its runbook's
/// configuration; procedures, and so actions, are not.)
protocol ProcedureHost: Sendable {
  var resolver: Resolver { get }
  var reporter: any Reporter { get }
  var options: RunOptions { get }
  var dialect: any OutputDialect { get }
  func runCommand(
    _ command: Command, values: [String: String], step: String, action: String, audit: AuditLog?
  ) async throws -> ProcessOutput
  func sleepInterruptibly(seconds: Double) async throws
  func checkInterrupted() throws
}

extension Engine: ProcedureHost {}

/// What a procedure's body can do: run commands through the engine, report progress, record
/// values durably in the checkpoint, sleep interruptibly.
package final class ProcedureContext: Sendable {
  package let step: String
  package let action: String
  /// How many things the procedure may do at once (`--jobs`).
  package let jobs: Int
  /// The arguments every command of a tool carries, by tool (the aws CLI's `--endpoint-url`).
  package let toolArguments: [String: [String]]
  private let engine: any ProcedureHost
  /// Nil for an operation that keeps nothing in the checkpoint (``Engine/runOperation``).
  private let keeper: CheckpointKeeper?
  private let audit: AuditLog
  private let initialValues: [String: String]
  private let recorded = Mutex<[String: String]>([:])

  init(
    engine: any ProcedureHost, step: String, action: String, keeper: CheckpointKeeper?,
    audit: AuditLog, values: [String: String]
  ) {
    self.engine = engine
    self.step = step
    self.action = action
    self.keeper = keeper
    self.audit = audit
    self.initialValues = values
    self.jobs = engine.options.jobs
    self.toolArguments = engine.resolver.toolArguments
  }

  /// Exports and context values (`REGION`, `ACCOUNT_ID`...), with what this procedure recorded.
  package var values: [String: String] {
    initialValues.merging(recorded.withLock { $0 }) { $1 }
  }

  /// Runs a command (throttling retried) and returns what it produced, failed or not.
  package func run(_ command: Command) async throws -> ProcessOutput {
    try await engine.runCommand(command, values: values, step: step, action: action, audit: audit)
  }

  /// Runs a command and returns its standard output; a failure fails the procedure with the
  /// command and its error output.
  package func output(_ command: Command) async throws -> String {
    let result = try await run(command)
    guard result.succeeded else { throw failure(of: command, result) }
    return result.stdoutText
  }

  /// Runs a command and parses its standard output as JSON (an empty output is `{}`).
  package func json(_ command: Command) async throws -> Any {
    let text = try await output(command)
    if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [String: Any]() }
    do {
      return try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    } catch {
      throw ProcedureFailure(
        "the output is not JSON: \(engine.resolver.secrets.mask(String(text.prefix(200))))",
        command: shown(command))
    }
  }

  /// The failure a failed command means: its masked error output, explained.
  package func failure(of command: Command, _ result: ProcessOutput) -> ProcedureFailure {
    let stderr = engine.resolver.secrets.mask(result.stderrText)
    return ProcedureFailure(
      "\(result.termination): " + engine.dialect.explain(stderr), command: shown(command))
  }

  /// The command as people see it (known values filled in, secrets masked).
  package func shown(_ command: Command) -> String {
    engine.resolver.display(command, values: values)
  }

  /// One line of progress for the operator.
  package func progress(_ message: String) {
    engine.reporter.report(.progress(step: step, action: action, message: message))
  }

  /// Records an export in the checkpoint now (durably), before the procedure goes on.
  package func record(export: String, value: String) async throws {
    guard let keeper else {
      throw ProcedureFailure("\(step) \(action) keeps nothing in the checkpoint (\(export))")
    }
    recorded.withLock { $0[export] = value }
    try await keeper.setExport(export, value, owner: "\(step)/\(action)")
    audit.write("[\(step)/\(action)] recorded \(export)=\(value)")
  }

  /// Sleeps; Ctrl-C ends the sleep (and the run) within a tenth of a second.
  package func sleep(seconds: Double) async throws {
    try await engine.sleepInterruptibly(seconds: seconds)
  }

  /// Throws ``Interrupted`` when the run was asked to stop.
  package func checkInterrupted() throws { try engine.checkInterrupted() }
}

/// One result of ``Swift/Array/concurrentMap(limit:_:)`` and where it goes. (A struct, not a
/// tuple: a tuple as a task group's child result breaks the release build; see ``Completion``.)
struct Indexed<Value: Sendable>: Sendable {
  let index: Int
  let value: Value
}

extension Array where Element: Sendable {
  /// `transform` applied to every element with at most `limit` running at once; results in order.
  package func concurrentMap<T: Sendable>(
    limit: Int, _ transform: @escaping @Sendable (Element) async -> T
  ) async -> [T] {
    await withTaskGroup(of: Indexed<T>.self) { group in
      var results = [T?](repeating: nil, count: count)
      var next = 0
      var running = 0
      while next < count || running > 0 {
        while running < Swift.max(1, limit), next < count {
          let index = next
          let element = self[index]
          group.addTask { Indexed(index: index, value: await transform(element)) }
          next += 1
          running += 1
        }
        if let done = await group.next() {
          results[done.index] = done.value
          running -= 1
        }
      }
      return results.map { $0! }
    }
  }
}

extension Action {
  /// A read that makes no call: the export is `value` with the exports and context values it
  /// references filled in (a queue's ARN follows from its name, the region and the account).
  /// It runs after `after` (the resource the value names exists by then); `plan` shows the rule.
  package static func derived(
    _ name: String, _ summary: String, export: String, pattern: String, value: Argument,
    after: [String] = []
  ) -> Action {
    let references = value.exportReferences.filter { !ContextValue.names.contains($0) }
    let procedure = Procedure(
      "derive \(export)", outline: [.note("\(export) = " + value)], requires: references
    ) { context in
      guard let text = value.text(values: context.values) else {
        throw ProcedureFailure("\(export) cannot be derived: a value it is made of is unknown")
      }
      return text
    }
    return Action(
      name: name, summary: summary, effect: .read, command: Command(tool: "", arguments: []),
      capture: Capture(export: export, pattern: pattern), after: after, procedure: procedure)
  }
}

extension Resolver {
  /// A procedure's outline as shown to people (`plan`, the prompt): one line per command or note,
  /// known values filled in.
  func display(_ outline: [Procedure.Line], values: [String: String]) -> String {
    outline.map { line in
      switch line {
      case .command(let command): display(command, values: values)
      case .note(let note): display(note, values: values)
      }
    }.joined(separator: "\n")
  }
}
