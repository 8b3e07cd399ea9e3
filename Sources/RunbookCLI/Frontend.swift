import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState
import Synchronization
import UniSyncRunbook

/// Exit statuses, as documented in `runbook --help`.
public enum ExitStatus {
  public static let success: Int32 = 0
  public static let stepFailed: Int32 = 1
  public static let usage: Int32 = 2
  public static let locked: Int32 = 3
  /// `drift` found a resource missing or changed.
  public static let drifted: Int32 = 4
  /// `run --refresh` (or `plan --refresh`) would have to replace a resource (a VPC's CIDR
  /// changed): nothing was written.
  public static let refreshRefused: Int32 = 5
  public static let interrupted: Int32 = 130
}

/// Wires the command line to the library: parses, loads, builds an engine, renders, maps errors to exit codes.
public final class Frontend: Sendable {
  public struct Environment: Sendable {
    public var output: TextOutput
    public var errors: TextOutput
    public var inputIsTerminal: Bool
    public var variables: [String: String]
    public var readLine: @Sendable () -> String?
    public var workingDirectory: String
    /// The folder of the running `runbook` executable; the programs built and installed with it
    /// (`runbook-health-probe`) are looked for there before PATH. Nil: PATH only.
    public var executableDirectory: String?

    public init(
      output: TextOutput, errors: TextOutput, inputIsTerminal: Bool, variables: [String: String],
      readLine: @escaping @Sendable () -> String? = { Swift.readLine() },
      workingDirectory: String = FileManager.default.currentDirectoryPath,
      executableDirectory: String? = nil
    ) {
      self.output = output
      self.errors = errors
      self.inputIsTerminal = inputIsTerminal
      self.variables = variables
      self.readLine = readLine
      self.workingDirectory = workingDirectory
      self.executableDirectory = executableDirectory
    }
  }

  let environment: Environment
  let runner: any CommandRunner
  let currentEngine = Mutex<Engine<Deployment>?>(nil)

  public init(environment: Environment, runner: any CommandRunner) {
    self.environment = environment
    self.runner = runner
  }

  /// Stops the running engine, if any. Returns false when nothing was running.
  public func interrupt(reason: String) -> Bool {
    guard let engine = currentEngine.withLock({ $0 }) else { return false }
    engine.interrupt(reason: reason)
    return true
  }

  /// Runs one command line; returns the exit status.
  public func run(_ argv: [String]) async -> Int32 {
    do {
      return try await dispatch(argv)
    } catch let error as StepFailure {
      environment.errors.write("error: \(error)\n")
      return ExitStatus.stepFailed
    } catch let error as Interrupted {
      environment.errors.write("\(error)\n")
      return ExitStatus.interrupted
    } catch let error as RefreshRefused {
      environment.errors.write("error: \(error)\n")
      return ExitStatus.refreshRefused
    } catch let error as LockHeldError {
      environment.errors.write("error: \(error)\n")
      return ExitStatus.locked
    } catch let error as StateConflictError {
      environment.errors.write("error: \(error)\n")
      return ExitStatus.locked
    } catch let error as ConfigurationError {
      environment.errors.write("error: \(error)\n")
      return ExitStatus.usage
    } catch {
      environment.errors.write("error: \(error)\n")
      return ExitStatus.usage
    }
  }

  private func dispatch(_ argv: [String]) async throws -> Int32 {
    let parsed = try parseCommandLine(argv)
    guard let command = parsed.command else {
      environment.output.write(CLISpec.mainHelp())
      return parsed.flag("help") ? ExitStatus.success : ExitStatus.usage
    }
    if parsed.flag("help"), let spec = CLISpec.command(command) {
      environment.output.write(CLISpec.help(for: spec))
      return ExitStatus.success
    }
    let style = Style.detect(
      output: environment.output, environment: environment.variables,
      noColor: parsed.flag("no-color"))
    if command == "doctor" { return await doctor(parsed, style: style) }
    let context = try Context(parsed: parsed, environment: environment)
    switch command {
    case "plan":
      let steps = try selectSteps(parsed.arguments)
      return try await printPlan(
        context, steps: steps, style: style, imageTag: try imageTag(parsed),
        request: try request(parsed, steps: steps, deployment: context.deployment),
        refresh: parsed.flag("refresh"))
    case "run":
      if parsed.flag("dry-run") {
        let steps = try selectSteps(parsed.arguments)
        return try await printPlan(
          context, steps: steps, style: style, imageTag: try imageTag(parsed),
          request: try request(parsed, steps: steps, deployment: context.deployment),
          refresh: parsed.flag("refresh"))
      }
      return try await runSteps(context, parsed: parsed, style: style, argv: argv)
    case "destroy":
      return try await destroy(context, parsed: parsed, style: style, argv: argv)
    case "status":
      let report = try await StatusReport(
        engine: context.engine(
          runner: runner, reporter: SilentReporter(), prompter: nil, options: RunOptions()))
      environment.output.write(parsed.flag("json") ? report.json() : report.text(style: style))
      return ExitStatus.success
    case "env":
      let checkpoint = try await context.engine(
        runner: runner, reporter: SilentReporter(), prompter: nil, options: RunOptions()
      ).loadCheckpoint()
      for (name, value) in (checkpoint?.exports ?? [:]).sorted(by: { $0.key < $1.key }) {
        environment.output.write(
          "export \(name)='\(value.replacingOccurrences(of: "'", with: #"'\''"#))'\n")
      }
      return ExitStatus.success
    case "reset":
      guard parsed.arguments.count == 1 else {
        throw UsageError("'reset' takes exactly one step name")
      }
      let step = try selectSteps(parsed.arguments)[0]
      try await reset(step: step.id, context: context)
      return ExitStatus.success
    case "unlock":
      return try await unlock(context, parsed: parsed, style: style)
    case "task":
      return try await task(context, parsed: parsed, style: style, argv: argv)
    case "state":
      return try await transferState(context, parsed: parsed)
    case "drift":
      return try await drift(context, parsed: parsed, style: style)
    case "history":
      let report = try await HistoryReport(
        state: context.stateStore(runner: runner), deployment: context.deployment.name)
      environment.output.write(parsed.flag("json") ? report.json() : report.text(style: style))
      return ExitStatus.success
    case "policy":
      let steps = parsed.arguments.isEmpty ? Catalogue.steps : try selectSteps(parsed.arguments)
      environment.output.write(
        OperatorPolicy(steps: steps, deployment: context.deployment, s3State: context.s3State)
          .json())
      return ExitStatus.success
    case "log":
      let directory = StateDirectory(path: context.stateDirectory).logsDirectory
      guard let path = AuditLog.latest(in: directory),
        let text = try? String(contentsOfFile: path, encoding: .utf8)
      else { throw UsageError("\(directory): no run has been logged yet") }
      environment.output.write(text)
      return ExitStatus.success
    default:
      throw UsageError("unknown command '\(command)'")
    }
  }

  private func doctor(_ parsed: ParsedCommandLine, style: Style) async -> Int32 {
    let doctor = Doctor(
      runner: runner, variables: environment.variables,
      executableDirectory: environment.executableDirectory,
      configPath: parsed.options["config"] ?? "runbooks/unisync-ecs.json",
      context: Result { try Context(parsed: parsed, environment: environment) })
    let checks = await doctor.checks()
    for check in checks {
      let label = check.level.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)
      let painted =
        switch check.level {
        case .ok: style.green(label)
        case .warn: style.yellow(label)
        case .fail: style.red(label)
        }
      environment.output.write(
        "\(painted) \(check.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(check.detail)\n"
      )
      if let fix = check.fix, check.level != .ok { environment.output.write("      fix: \(fix)\n") }
    }
    let failed = checks.filter { $0.level == .fail }.count
    environment.output.write(failed == 0 ? "all checks passed\n" : "\(failed) check(s) failed\n")
    return failed == 0 ? ExitStatus.success : ExitStatus.stepFailed
  }

  /// The steps named on the command line, in guide order; all of them when none is named.
  func selectSteps(_ names: [String]) throws -> [any GuideStep] {
    // Operations (verify, update) run only when named.
    guard !names.isEmpty else { return Catalogue.steps.filter(\.runsByDefault) }
    for name in names {
      if Catalogue.step(name) == nil {
        throw UsageError(
          "unknown step '\(name)' (steps: \(Catalogue.guideOrder.joined(separator: " ")))")
      }
    }
    return Catalogue.steps.filter { names.contains($0.id) }
  }

  /// `--tag TAG`, checked against Docker's rules for tags.
  private func imageTag(_ parsed: ParsedCommandLine) throws -> String? {
    guard let tag = parsed.options["tag"] else { return nil }
    guard tag.range(of: #"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"#, options: .regularExpression) != nil
    else {
      throw UsageError(
        "--tag: '\(tag)' is not a valid image tag (letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 128)"
      )
    }
    return tag
  }

  /// What the operation options ask for, checked against the configuration and the steps named.
  func request(_ parsed: ParsedCommandLine, steps: [any GuideStep], deployment: Deployment) throws
    -> RunRequest
  {
    let services = parsed.values["service"] ?? []
    let known = deployment.services.map(\.name)
    for name in services where !known.contains(name) {
      throw UsageError(
        "--service: '\(name)' is not a service of the configuration (services: \(known.joined(separator: ", ")))"
      )
    }
    let ids = steps.map(\.id)
    if parsed.flag("follow"), !ids.contains("verify") {
      throw UsageError("--follow is for 'run verify'")
    }
    if parsed.flag("rollback"), !ids.contains("update") {
      throw UsageError("--rollback is for 'run update'")
    }
    if !services.isEmpty, !ids.contains("update"), !ids.contains("verify") {
      throw UsageError("--service is for 'run update' and 'run verify'")
    }
    return RunRequest(
      services: services, rollback: parsed.flag("rollback"), follow: parsed.flag("follow"))
  }

  /// The command line as the lock and the audit log record it (shell-quoted for display).
  func commandLine(_ argv: [String]) -> String {
    (["runbook"] + argv).map(shellQuoted).joined(separator: " ")
  }

  /// `--jobs N` (default 4).
  func jobs(_ parsed: ParsedCommandLine) throws -> Int {
    guard let text = parsed.options["jobs"] else { return 4 }
    guard let value = Int(text), value >= 1, value <= 64 else {
      throw UsageError("--jobs: '\(text)' is not a number from 1 to 64")
    }
    return value
  }

  private func runSteps(_ context: Context, parsed: ParsedCommandLine, style: Style, argv: [String])
    async throws
    -> Int32
  {
    let steps = try selectSteps(parsed.arguments)
    let yes = parsed.flag("yes")
    if !yes && !environment.inputIsTerminal {
      throw UsageError(
        "'run' changes AWS resources and needs confirmation: run it in a terminal, or pass --yes")
    }
    let jobs = try self.jobs(parsed)
    let reporter = ConsoleReporter(
      output: environment.output, errors: environment.errors, style: style,
      verbose: parsed.flag("verbose"))
    let prompter = TerminalPrompter(
      output: environment.output, style: style, readLine: environment.readLine)
    var options = RunOptions(
      assumeYes: yes, adopt: parsed.flag("adopt"), jobs: jobs,
      commandLine: commandLine(argv), overwriteSecrets: parsed.flag("overwrite-secrets"),
      imageTag: steps.contains { $0.id == "update" } ? try imageTag(parsed) : nil)
    options.refresh = parsed.flag("refresh")
    let engine = context.engine(
      runner: runner, reporter: reporter, prompter: prompter, options: options,
      imageTag: try imageTag(parsed),
      request: try request(parsed, steps: steps, deployment: context.deployment))
    currentEngine.withLock { $0 = engine }
    defer { currentEngine.withLock { $0 = nil } }
    defer { reporter.finish() }  // held blocks and the live line, also after a failure
    let started = Date()
    let summary = try await engine.run(steps)
    let drift = summary.configurationDrift
    if let refresh = summary.refresh {
      for line in RefreshText.lines(
        refresh, steps: steps.map(\.id), style: style, preview: summary.nothingToDo)
      {
        environment.output.write(line + "\n")
      }
    }
    if summary.nothingToDo, drift.isEmpty {
      environment.output.write(
        "nothing to do: every action of \(steps.map(\.id).joined(separator: ", ")) is done\n")
    } else if summary.nothingToDo {
      environment.output.write(
        "every action of \(steps.map(\.id).joined(separator: ", ")) is done, but "
          + style.yellow("\(drift.count) of them were done with another configuration")
          + " than today's:\n")
    } else {
      environment.output.write(
        style.bold("finished in \(String(format: "%.1f", Date().timeIntervalSince(started)))s: ")
          + summary.tally() + "\n")
      for line in summary.stepTallies(order: steps.map(\.id)) {
        environment.output.write("  \(line)\n")
      }
      if let path = summary.criticalPath {
        environment.output.write("critical path: \(path.description)\n")
      }
    }
    if !drift.isEmpty, !summary.nothingToDo {
      environment.output.write(
        style.yellow("\(drift.count) done action(s) were done with another configuration")
          + " than today's:\n")
    }
    if !drift.isEmpty {
      for line in ConfigurationDriftText.actions(drift, style: style) {
        environment.output.write(line + "\n")
      }
      environment.output.write(ConfigurationDriftText.advice(drift) + "\n")
    }
    if !summary.pendingManual.isEmpty {
      environment.output.write(
        style.yellow("manual actions pending: ") + summary.pendingManual.joined(separator: ", ")
          + " (see 'runbook status')\n")
    }
    if parsed.arguments.isEmpty, Catalogue.step("verify") != nil {
      environment.output.write("check the deployment with: runbook run verify\n")
    }
    return ExitStatus.success
  }

  private func reset(step: String, context: Context) async throws {
    let engine = context.engine(
      runner: runner, reporter: SilentReporter(), prompter: nil, options: RunOptions())
    let state = engine.state
    try await state.prepare()
    let lock = try await state.acquireLock(command: "runbook reset \(step)")
    do {
      guard var checkpoint = try await engine.loadCheckpoint() else {
        environment.output.write("nothing to reset: there is no checkpoint in \(state.location)\n")
        await lock.release()
        return
      }
      try await state.journal.append(
        JournalEntry(lineage: checkpoint.lineage, event: .reset, action: step))
      let previous = checkpoint
      checkpoint.forget(step: step)
      try await state.save(checkpoint.succeeding(previous))
    } catch {
      await lock.release()
      throw error
    }
    await lock.release()
    environment.output.write("forgot step '\(step)' (its resources were left as they are)\n")
  }
}

/// Drops every event (plan, status).
struct SilentReporter: Reporter {
  func report(_ event: RunEvent) {}
}
