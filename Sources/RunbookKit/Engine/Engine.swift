import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// How a run behaves.
public struct RunOptions: Sendable {
  /// Never ask; run every write.
  public var assumeYes: Bool
  /// Take over existing resources found by name alone (they are never deleted by `destroy`).
  public var adopt: Bool
  /// Independent actions running at once (1 in interactive mode).
  public var jobs: Int
  /// The command line, recorded in the lock.
  public var commandLine: String
  public var retry: RetryPolicy
  /// The tag for the images this run builds (`run --tag`); nil: the steps' default.
  public var imageTag: String?
  /// Run the `overwrite` write of actions that have one, even when they are done: an existing
  /// secret gets this run's value (otherwise it keeps the value it has).
  public var overwriteSecrets: Bool
  /// What the run was asked for beyond the tag (`--service`, `--rollback`, `--follow`, destroy's choices).
  public var request: RunRequest

  public init(
    assumeYes: Bool = false, adopt: Bool = false, jobs: Int = 4, commandLine: String = "runbook",
    retry: RetryPolicy = RetryPolicy(), imageTag: String? = nil, overwriteSecrets: Bool = false,
    request: RunRequest = RunRequest()
  ) {
    self.request = request
    self.imageTag = imageTag
    self.assumeYes = assumeYes
    self.adopt = adopt
    self.overwriteSecrets = overwriteSecrets
    self.jobs = max(1, jobs)
    self.commandLine = commandLine
    self.retry = retry
  }
}

/// Bounded, jittered exponential backoff for throttling errors.
public struct RetryPolicy: Sendable {
  public var attempts: Int
  public var baseDelaySeconds: Double
  public var maxDelaySeconds: Double

  public init(attempts: Int = 8, baseDelaySeconds: Double = 0.5, maxDelaySeconds: Double = 20) {
    self.attempts = attempts
    self.baseDelaySeconds = baseDelaySeconds
    self.maxDelaySeconds = maxDelaySeconds
  }

  /// The delay before retry number `attempt` (1-based): full jitter over an exponential ceiling.
  public func delay(attempt: Int) -> Double {
    let ceiling = min(maxDelaySeconds, baseDelaySeconds * pow(2, Double(attempt - 1)))
    return Double.random(in: (ceiling / 2)...ceiling)
  }
}

/// One action as `plan` shows it.
public struct PlannedAction: Sendable, Hashable {
  public var name: String
  public var summary: String
  /// `read`, `write`, `wait` or `manual`.
  public var kind: String
  public var command: String
  public var done: Bool
  public var export: String?
  /// For a teardown action whose resource stays: why (adopted, existed already, never made).
  public var kept: String?
}

/// One step as `plan` shows it.
public struct PlannedStep: Sendable, Hashable {
  public var id: String
  public var section: String
  public var title: String
  public var actions: [PlannedAction]
}

/// What a run did.
public struct RunSummary: Sendable, Hashable {
  public var outcomes: [String: ActionOutcome] = [:]
  public var pendingManual: [String] = []
  public var nothingToDo = false

  /// How many actions ended how (`12 created, 3 read`), outcomes in alphabetical order; only
  /// those of `step` when given.
  public func tally(step: String? = nil) -> String {
    var counts: [ActionOutcome: Int] = [:]
    for (key, outcome) in outcomes where step.map({ key.hasPrefix("\($0)/") }) ?? true {
      counts[outcome, default: 0] += 1
    }
    return counts.sorted { $0.key.rawValue < $1.key.rawValue }
      .map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
  }

  /// One line per step that did something, in the order given (`network: 17 created, 1 read`):
  /// when steps ran beside each other their lines interleaved, and this sorts them out. Empty
  /// when only one step did something.
  public func stepTallies(order: [String]) -> [String] {
    let active = order.filter { step in outcomes.keys.contains { $0.hasPrefix("\(step)/") } }
    guard active.count > 1 else { return [] }
    let width = active.map(\.count).max() ?? 0
    return active.map {
      ($0 + ":").padding(toLength: width + 1, withPad: " ", startingAt: 0) + " " + tally(step: $0)
    }
  }
}

/// Runs steps: resolves commands, asks, journals, runs, captures, records.
///
/// The only part of the tool that touches the checkpoint. It never prints: everything goes to the reporter.
public final class Engine: Sendable {
  public let deployment: Deployment
  public let state: any StateStore
  public let catalogue: [any Step]
  let runner: any CommandRunner
  let reporter: any Reporter
  let prompter: (any Prompter)?
  let resolver: Resolver
  let options: RunOptions
  /// The process environment (secrets supplied through variables are read from it).
  let environment: [String: String]
  private let interruption = Mutex<String?>(nil)
  /// Set when a step of the run failed: the steps running beside it start no new action.
  private let halted = Mutex(false)
  /// This run's ``ContextValue/runDirectory``, while a run is going on.
  private let runDirectory = Mutex<String?>(nil)
  /// The actions (`step/action`) whose command created their resource in this run
  /// (``Settlement``).
  let createdThisRun = Mutex<Set<String>>([])

  public init(
    deployment: Deployment, state: any StateStore, catalogue: [any Step] = Catalogue.steps,
    runner: any CommandRunner, reporter: any Reporter, prompter: (any Prompter)?, aws: AWSSettings,
    secrets: SecretStore = SecretStore(), options: RunOptions,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    programs: [String: String] = [:]
  ) {
    self.environment = environment
    var deployment = deployment
    if let tag = options.imageTag { deployment.imageTag = tag }
    deployment.request = options.request
    self.deployment = deployment
    self.state = state
    self.catalogue = catalogue
    self.runner = runner
    self.reporter = reporter
    self.prompter = options.assumeYes ? nil : prompter
    self.resolver = Resolver(aws: aws, secrets: secrets, programs: programs)
    self.options = options
  }

  /// Asks the engine to stop: no new command starts, and the run ends with ``Interrupted``.
  /// (The caller stops the running children through its runner.)
  public func interrupt(reason: String) {
    interruption.withLock { if $0 == nil { $0 = reason } }
  }

  func checkInterrupted() throws {
    if let reason = interruption.withLock({ $0 }) { throw Interrupted(reason) }
  }

  /// Whether a step of the run failed (its siblings then start no new action).
  var isHalted: Bool { halted.withLock { $0 } }

  // MARK: - Checkpoint access

  /// The checkpoint, validated against this deployment and region; nil when none exists yet.
  public func loadCheckpoint() async throws -> Checkpoint? {
    guard let checkpoint = try await state.load() else { return nil }
    if checkpoint.deployment != deployment.name {
      throw CheckpointError.foreignDeployment(
        file: state.stateFile, checkpoint: checkpoint.deployment, configuration: deployment.name)
    }
    if checkpoint.region != resolver.aws.region {
      throw CheckpointError.foreignRegion(
        file: state.stateFile, checkpoint: checkpoint.region, configuration: resolver.aws.region)
    }
    return checkpoint
  }

  func contextValues(_ checkpoint: Checkpoint?) -> [String: String] {
    var values = checkpoint?.exports ?? [:]
    values[ContextValue.region] = resolver.aws.region
    if let checkpoint {
      values[ContextValue.lineage] = checkpoint.lineage
      if let account = checkpoint.account { values[ContextValue.account] = account }
    }
    if let directory = runDirectory.withLock({ $0 }) {
      values[ContextValue.runDirectory] = directory
    }
    return values
  }

  // MARK: - Plan

  /// Every command the steps would run, in order, with placeholders for unknown values. Starts no process.
  public func plan(_ steps: [any Step]) async throws -> [PlannedStep] {
    try plan(steps, checkpoint: try await loadCheckpoint())
  }

  /// ``plan(_:)`` for a checkpoint read already.
  public func plan(_ steps: [any Step], checkpoint: Checkpoint?) throws -> [PlannedStep] {
    let values = contextValues(checkpoint)
    try checkRequests(steps)
    return steps.map { step in
      PlannedStep(
        id: step.id, section: step.section, title: step.title,
        actions: step.actions(for: deployment).map { action in
          let kind: String
          switch action.effect {
          case .read: kind = action.wait == nil ? "read" : "wait"
          case .write: kind = "write"
          case .manual: kind = "manual"
          }
          var command: String
          if case .manual(let instructions) = action.effect {
            command = resolver.display(instructions, values: values)
          } else if let procedure = action.procedure {
            command = procedure.outline.map { line in
              switch line {
              case .command(let command): resolver.display(command, values: values)
              case .note(let note): resolver.display(note, values: values)
              }
            }.joined(separator: "\n")
          } else {
            command = resolver.display(action.command, values: values)
          }
          if let settlement = action.settledBy, settlement.consequence == .nothingToDo {
            command +=
              "\n  not needed when \(settlement.action) creates its resource in the same run"
          }
          if let overwrite = action.overwrite {
            command +=
              "\n  with --overwrite-secrets, when it exists already:\n"
              + resolver.display(overwrite, values: values)
          }
          let record = checkpoint?.record(step.id, action.name)
          return PlannedAction(
            name: action.name, summary: action.summary, kind: kind, command: command,
            done: record?.status == .done && !action.repeatable, export: action.capture?.export,
            kept: action.deletes.flatMap { StepExecution.notOwned(checkpoint?.record(step.id, $0)) }
          )
        })
    }
  }

  // MARK: - Prerequisites

  /// The step that produces `export`, if any.
  func producer(of export: String) -> (any Step)? {
    catalogue.first { $0.producedExports(for: deployment).contains(export) }
  }

  /// Checks that every export the steps need exists or is produced by an earlier step of the run.
  public func checkPrerequisites(_ steps: [any Step], checkpoint: Checkpoint?) throws {
    var available = Set((checkpoint?.exports ?? [:]).keys)
    // A teardown uses the exports of what was created; what was never created it leaves alone.
    for step in steps where !(step is TeardownStep) {
      let missing = step.requiredExports(for: deployment).filter { !available.contains($0) }
      if !missing.isEmpty {
        let producers = missing.compactMap { producer(of: $0)?.id }
        var unique: [String] = []
        for id in producers where !unique.contains(id) { unique.append(id) }
        let advice =
          unique.isEmpty
          ? "no step produces them"
          : "run 'runbook run \(unique.joined(separator: " "))' first"
        throw UsageError(
          "step '\(step.id)' needs \(missing.joined(separator: ", ")), which the checkpoint does not have: \(advice)"
        )
      }
      available.formUnion(step.producedExports(for: deployment))
    }
  }

  /// Checks what each step needs from this run's request (`update` needs `--tag`).
  func checkRequests(_ steps: [any Step]) throws {
    let problems = steps.compactMap { $0.usageProblem(for: deployment) }
    if !problems.isEmpty { throw UsageError(problems.joined(separator: "; ")) }
  }

  /// Checks that every program the pending actions run (`aws`, `docker`, `zip`...) is on PATH
  /// (or where the resolver's `programs` say it is).
  public func checkTools(_ steps: [any Step], checkpoint: Checkpoint?) throws {
    let tools = neededTools(steps, checkpoint: checkpoint)
    let path = environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"]
    let missing = tools.filter { findExecutable(resolver.executable($0), path: path) == nil }
    if !missing.isEmpty {
      var location = "on PATH"
      if missing.contains(HealthProbe.tool) {
        location += " (\(HealthProbe.tool) is built and installed beside runbook)"
      }
      throw UsageError(
        "cannot find \(missing.map { "'\(resolver.executable($0))'" }.joined(separator: " and ")) \(location), which the steps \(steps.map(\.id).joined(separator: ", ")) need (see 'runbook doctor')"
      )
    }
  }

  /// The programs the actions still to run start (aws always: the account is read first).
  func neededTools(_ steps: [any Step], checkpoint: Checkpoint?) -> [String] {
    var tools: [String] = ["aws"]
    for step in steps {
      for action in step.actions(for: deployment)
      where action.repeatable || checkpoint?.record(step.id, action.name)?.status != .done {
        if case .manual = action.effect { continue }
        let commands = action.procedure?.commands ?? [action.command]
        for command in commands + commands.flatMap(\.pipedInto) where !tools.contains(command.tool)
        {
          tools.append(command.tool)
        }
      }
    }
    return tools
  }

  /// When actions still to run use docker, its daemon must answer before anything is created: a
  /// Docker Desktop not started would otherwise show up only after the repositories exist.
  func checkDockerDaemon(_ steps: [any Step], checkpoint: Checkpoint?) async throws {
    guard neededTools(steps, checkpoint: checkpoint).contains("docker") else { return }
    let output = try await runner.run(
      Invocation(executable: "docker", arguments: ["version", "--format", "{{.Server.Version}}"]))
    guard !output.succeeded else { return }
    let reason = output.stderrText.split(separator: "\n").last.map(String.init) ?? "no answer"
    throw UsageError(
      "the Docker daemon does not answer (\(reason)), and the steps \(steps.map(\.id).joined(separator: ", ")) build and push images: start dockerd (or Docker Desktop), or point DOCKER_HOST at a running engine (see 'runbook doctor')"
    )
  }

  /// Whether any action of these steps still has work to do.
  func hasWork(_ steps: [any Step], checkpoint: Checkpoint?) -> Bool {
    steps.contains { step in
      step.actions(for: deployment).contains { action in
        if overwrites(action) || action.repeatable { return true }
        guard let record = checkpoint?.record(step.id, action.name) else { return true }
        switch record.status {
        case .done: return false
        case .pendingManual: return prompter != nil
        case .skipped: return true
        }
      }
    }
  }

  // MARK: - Run

  /// Runs the steps in order. Throws ``StepFailure``, ``Interrupted``, ``UsageError``,
  /// ``CheckpointError`` or ``LockHeldError``.
  public func run(_ steps: [any Step]) async throws -> RunSummary {
    // Everything that can be checked without writing is checked first, so bad input creates and
    // changes nothing in the state directory.
    if let holder = try await state.lockHolder() {
      throw LockHeldError(path: state.lockFile, holder: holder)
    }
    let preliminary = try await loadCheckpoint()
    try checkRequests(steps)
    // A teardown of a step the checkpoint knows nothing of has nothing to do.
    let steps = steps.filter { step in
      !(step is TeardownStep)
        || preliminary?.actions.keys.contains { $0.hasPrefix(step.id + "/") } == true
    }
    try checkPrerequisites(steps, checkpoint: preliminary)
    guard hasWork(steps, checkpoint: preliminary) else {
      var summary = RunSummary()
      summary.nothingToDo = true
      summary.pendingManual = pendingManual(steps, preliminary)
      return summary
    }
    try checkTools(steps, checkpoint: preliminary)
    try gatherSecrets(steps, checkpoint: preliminary, environment: environment)
    let account = try await callerAccount()
    try await checkDockerDaemon(steps, checkpoint: preliminary)
    if let pinned = preliminary?.account, pinned != account {
      throw CheckpointError.foreignAccount(
        file: state.stateFile, checkpoint: pinned, credentials: account)
    }

    try await state.prepare()
    let lock = try await state.acquireLock(command: options.commandLine)
    do {
      let summary = try await runLocked(steps, lock: lock, account: account)
      await lock.release()
      return summary
    } catch {
      await lock.release()
      throw error
    }
  }

  /// The part of ``run(_:)`` that runs under the lock.
  private func runLocked(_ steps: [any Step], lock: any HeldLock, account: String) async throws
    -> RunSummary
  {
    if let previous = lock.previous {
      reporter.report(
        .warning(
          "took over the lock left by pid \(previous.pid) on \(previous.host) (started \(previous.startedAt)), which is no longer running"
        ))
    }
    // Read again under the lock: another run may have finished in between.
    let existing = try await loadCheckpoint()
    let audit = AuditLog(directory: state.logsDirectory)
    audit.write("run: \(options.commandLine)")
    audit.write("account \(account), region \(resolver.aws.region)")
    var checkpoint =
      existing ?? Checkpoint(deployment: deployment.name, region: resolver.aws.region)
    if let pinned = checkpoint.account, pinned != account {
      throw CheckpointError.foreignAccount(
        file: state.stateFile, checkpoint: pinned, credentials: account)
    }
    if checkpoint.account == nil {
      checkpoint.account = account
      checkpoint.serial += 1
      checkpoint.updatedAt = timestamp()
      try await state.save(checkpoint)
    }
    let scratch = try makeRunDirectory()
    runDirectory.withLock { $0 = scratch }
    defer {
      runDirectory.withLock { $0 = nil }
      try? FileManager.default.removeItem(atPath: scratch)
    }
    let keeper = CheckpointKeeper(checkpoint, directory: state)
    let journal = state.journal
    var summary = RunSummary()
    halted.withLock { $0 = false }
    createdThisRun.withLock { $0 = [] }
    let slots = ActionSlots(prompter == nil ? options.jobs : 1)
    let concurrent =
      prompter == nil && options.jobs > 1 && !steps.contains { $0 is TeardownStep }
    if concurrent {
      summary.outcomes = try await runConcurrently(
        steps, keeper: keeper, journal: journal, audit: audit, slots: slots)
    } else {
      for step in steps {
        try checkInterrupted()
        let execution = StepExecution(
          engine: self, step: step, keeper: keeper, journal: journal, audit: audit, slots: slots)
        let outcomes = try await execution.run()
        for (name, outcome) in outcomes { summary.outcomes["\(step.id)/\(name)"] = outcome }
        if step is TeardownStep, !outcomes.values.contains(.skipped) {
          // Everything the step made is gone: a later run starts the step afresh.
          try await journal.append(
            JournalEntry(lineage: await keeper.current.lineage, event: .reset, action: step.id))
          try await keeper.forget(step: step.id)
          reporter.report(.note("  forgot step '\(step.id)': what it created is deleted"))
        }
      }
    }
    summary.pendingManual = pendingManual(steps, await keeper.current)
    return summary
  }

  /// For each step of a run (by index), the earlier steps of the run it waits for: those that
  /// produce an export it uses. An operation (verify, update) waits for every earlier step.
  func stepDependencies(_ steps: [any Step]) -> [Set<Int>] {
    let produced = steps.map { Set($0.producedExports(for: deployment)) }
    return steps.indices.map { index in
      let step = steps[index]
      let required = Set(step.requiredExports(for: deployment))
      return Set(
        (0..<index).filter { earlier in
          !step.runsByDefault || !produced[earlier].isDisjoint(with: required)
        })
    }
  }

  /// Runs the steps that do not need each other at once (the secrets, the images and the queues
  /// while the network is made), each as soon as the steps producing its exports have finished;
  /// `slots` bounds the actions running at once across them (`--jobs`). After a failure no new
  /// step starts and the running ones start no new action; the first real failure is thrown.
  private func runConcurrently(
    _ steps: [any Step], keeper: CheckpointKeeper, journal: any JournalStore, audit: AuditLog,
    slots: ActionSlots
  ) async throws -> [String: ActionOutcome] {
    let needs = stepDependencies(steps)
    var outcomes: [String: ActionOutcome] = [:]
    var started = Set<Int>()
    var finished = Set<Int>()
    var firstError: Error?
    await withTaskGroup(of: StepCompletion.self) { group in
      var running = 0
      while true {
        if firstError == nil {
          do { try checkInterrupted() } catch { firstError = error }
        }
        if firstError == nil {
          for index in steps.indices
          where !started.contains(index) && needs[index].isSubset(of: finished) {
            started.insert(index)
            running += 1
            let step = steps[index]
            group.addTask {
              let execution = StepExecution(
                engine: self, step: step, keeper: keeper, journal: journal, audit: audit,
                slots: slots)
              do {
                return StepCompletion(index: index, result: .success(try await execution.run()))
              } catch {
                return StepCompletion(index: index, result: .failure(error))
              }
            }
          }
        }
        guard running > 0, let completion = await group.next() else { break }
        running -= 1
        switch completion.result {
        case .success(let stepOutcomes):
          finished.insert(completion.index)
          for (name, outcome) in stepOutcomes {
            outcomes["\(steps[completion.index].id)/\(name)"] = outcome
          }
        case .failure(let error):
          halted.withLock { $0 = true }
          // A real failure explains more than the halt or interruption it caused elsewhere.
          if firstError == nil || firstError is HaltedBesideAFailure
            || (firstError is Interrupted
              && !(error is Interrupted || error is HaltedBesideAFailure))
          {
            firstError = error
          }
        }
      }
    }
    if let firstError { throw firstError }
    return outcomes
  }

  /// Whether this run puts new values into `action`'s resource even when it is done (`--overwrite-secrets`).
  func overwrites(_ action: Action) -> Bool { options.overwriteSecrets && action.overwrite != nil }

  func pendingManual(_ steps: [any Step], _ checkpoint: Checkpoint?) -> [String] {
    steps.flatMap { step in
      step.actions(for: deployment).compactMap { action in
        checkpoint?.record(step.id, action.name)?.status == .pendingManual
          ? "\(step.id)/\(action.name)" : nil
      }
    }
  }

  /// A new private (0700) temporary folder for this run's files.
  private func makeRunDirectory() throws -> String {
    var template = Array((NSTemporaryDirectory() + "/runbook-run-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else {
      throw CheckpointError.unwritable(
        path: NSTemporaryDirectory(), reason: "cannot create a temporary folder for this run")
    }
    return String(cString: made)
  }

  /// The account of the credentials in use (`sts get-caller-identity`).
  func callerAccount() async throws -> String {
    let command = Command.aws(
      "sts", "get-caller-identity", "--query", "Account", "--output", "text")
    let output = try await runCommand(
      command, values: [:], step: "preflight", action: "caller-identity", audit: nil)
    let account = output.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    guard output.succeeded, account.range(of: #"^[0-9]{12}$"#, options: .regularExpression) != nil
    else {
      throw StepFailure(
        step: "preflight", action: "caller-identity",
        command: resolver.display(command, values: [:]), termination: output.termination,
        awsErrorCode: awsErrorCode(in: output.stderrText),
        reason: "cannot read the AWS account of these credentials: "
          + explainAWSFailure(resolver.secrets.mask(output.stderrText)))
    }
    return account
  }

  /// Runs one command, retrying throttling errors; logs it (masked) to the audit log.
  func runCommand(
    _ command: Command, values: [String: String], step: String, action: String, audit: AuditLog?
  ) async throws -> ProcessOutput {
    let shown = resolver.display(command, values: values)
    reporter.report(.commandStarted(step: step, action: action, command: shown))
    var attempt = 1
    while true {
      try checkInterrupted()
      let scratch = ScratchFiles()
      defer { scratch.removeAll() }
      let started = Date()
      let output: ProcessOutput
      do {
        let invocation = try resolver.invocation(command, values: values, scratch: scratch)
        if let consumer = command.pipedInto.first {
          let consumerInvocation = try resolver.invocation(
            consumer, values: values, scratch: scratch)
          let result = try await runner.runPipeline(invocation, into: consumerInvocation)
          output = ProcessOutput(
            termination: result.producer.succeeded
              ? result.consumer.termination : result.producer.termination,
            standardOutput: result.consumer.standardOutput,
            standardError: result.producer.standardError + result.consumer.standardError)
        } else {
          output = try await runner.run(invocation)
        }
      } catch let error as ProcessLaunchError {
        audit?.write("[\(step)/\(action)] \(shown) -> \(error)")
        throw StepFailure(
          step: step, action: action, command: shown, termination: nil, awsErrorCode: nil,
          reason: error.description)
      }
      let seconds = Date().timeIntervalSince(started)
      let stderr = resolver.secrets.mask(output.stderrText)
      audit?.write(
        "[\(step)/\(action)] \(shown) -> \(output.termination) in \(String(format: "%.2f", seconds))s"
          + (awsRequestID(in: output.stdoutText + "\n" + stderr).map { " request-id \($0)" } ?? "")
          + (output.succeeded
            ? "" : " stderr: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"))
      // A command Ctrl-C stopped failed because of it, killed by the signal or not (the aws CLI
      // catches SIGINT and exits 130): the run ends interrupted, and a write keeps its intent
      // without a "failed" entry, so the next run looks for what it may have made.
      if !output.succeeded { try checkInterrupted() }
      guard !output.succeeded, let code = awsErrorCode(in: output.stderrText),
        throttlingErrorCodes.contains(code), attempt < options.retry.attempts
      else { return output }
      let delay = options.retry.delay(attempt: attempt)
      reporter.report(
        .retrying(step: step, action: action, reason: code, attempt: attempt, delaySeconds: delay))
      audit?.write(
        "[\(step)/\(action)] retry \(attempt) after \(code), waiting \(String(format: "%.2f", delay))s"
      )
      try await sleepInterruptibly(seconds: delay)
      attempt += 1
    }
  }

  /// Sleeps in short slices so an interrupt is noticed quickly.
  func sleepInterruptibly(seconds: Double) async throws {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
      try checkInterrupted()
      let slice = min(0.1, end.timeIntervalSinceNow)
      if slice > 0 { try? await Task.sleep(nanoseconds: UInt64(slice * 1_000_000_000)) }
    }
    try checkInterrupted()
  }
}

/// Holds the checkpoint during a run and writes every change durably, one at a time.
actor CheckpointKeeper {
  private(set) var current: Checkpoint
  let directory: any StateStore

  /// Whether a change is being written; changes wait their turn (writing suspends the actor,
  /// and each change must start from the checkpoint the previous one wrote).
  private var writing = false
  private var waiting: [CheckedContinuation<Void, Never>] = []

  init(_ checkpoint: Checkpoint, directory: any StateStore) {
    current = checkpoint
    self.directory = directory
  }

  private func takeTurn() async {
    if writing {
      await withCheckedContinuation { waiting.append($0) }
    } else {
      writing = true
    }
  }

  private func endTurn() {
    if waiting.isEmpty { writing = false } else { waiting.removeFirst().resume() }
  }

  func record(_ key: String, _ record: ActionRecord) async throws {
    await takeTurn()
    defer { endTurn() }
    var next = current
    next.actions[key] = record
    if let export = record.export, let value = record.value, record.status == .done {
      next.exports[export] = value
    }
    if next.lastFailure.map({ "\($0.step)/\($0.action)" }) == key { next.lastFailure = nil }
    try await save(next)
  }

  /// Sets one export (a procedure's value recorded before it goes on).
  func setExport(_ name: String, _ value: String, owner: String) async throws {
    await takeTurn()
    defer { endTurn() }
    var next = current
    next.exports[name] = value
    // An export an action captures belongs to that action's step; a new one to the procedure's.
    if !next.actions.values.contains(where: { $0.export == name }), next.exportOwners?[name] == nil
    {
      next.exportOwners = (next.exportOwners ?? [:]).merging([name: owner]) { $1 }
    }
    try await save(next)
  }

  /// Forgets a step's records and exports (its teardown finished: what it made is gone).
  func forget(step: String) async throws {
    await takeTurn()
    defer { endTurn() }
    var next = current
    next.forget(step: step)
    try await save(next)
  }

  func fail(step: String, action: String, message: String) async throws {
    await takeTurn()
    defer { endTurn() }
    var next = current
    next.lastFailure = FailureRecord(step: step, action: action, message: message, at: timestamp())
    try await save(next)
  }

  private func save(_ next: Checkpoint) async throws {
    var next = next
    next.serial = current.serial + 1
    next.updatedAt = timestamp()
    try await directory.save(next)
    current = next
  }
}
