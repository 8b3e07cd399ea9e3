import Foundation
import Synchronization

/// Runs the actions of one step: independent ones at once (bounded by `--jobs`), each through
/// write-ahead journal, command, capture and checkpoint.
final class StepExecution: Sendable {
  let engine: Engine
  let step: any Step
  let keeper: CheckpointKeeper
  let journal: any JournalStore
  let audit: AuditLog
  /// Set when the operator answers [a]ll: later writes of the step run without asking.
  private let approveAll = Mutex(false)
  /// What the reads of this run answered. Each aws call costs about a second: a read of a command
  /// already answered in this run (the last poll of a wait asks for the values read after it)
  /// takes the answer from here.
  private let answeredThisRun = Mutex(AnsweredReads())

  /// Bounds the actions running at once across the run's steps; nil: only this step's `--jobs`.
  let slots: ActionSlots?

  init(
    engine: Engine, step: any Step, keeper: CheckpointKeeper, journal: any JournalStore,
    audit: AuditLog, slots: ActionSlots? = nil
  ) {
    self.slots = slots
    self.engine = engine
    self.step = step
    self.keeper = keeper
    self.journal = journal
    self.audit = audit
  }

  var reporter: any Reporter { engine.reporter }

  func run() async throws -> [String: ActionOutcome] {
    let started = Date()
    reporter.report(.stepStarted(step: step.id, section: step.section, title: step.title))
    let actions = step.actions(for: engine.deployment)
    let dependencies = Self.dependencies(of: actions)
    let checkpoint = await keeper.current
    var outcomes: [String: ActionOutcome] = [:]
    var finished = Set<String>()
    var skipped = Set<String>()
    let done = Self.done(actions, dependencies, checkpoint, step.id)
    for action in actions where done.contains(action.name) && !engine.overwrites(action) {
      finished.insert(action.name)
      outcomes[action.name] = .alreadyDone
      reporter.report(
        .actionFinished(
          step: step.id, action: action.name, outcome: .alreadyDone,
          detail: Self.detail(action, checkpoint.record(step.id, action.name)?.value)))
    }
    var pending = actions.filter { !finished.contains($0.name) }
    let jobs = engine.prompter == nil ? engine.options.jobs : 1
    var firstError: Error?

    await withTaskGroup(of: Completion.self) { group in
      var running = 0
      while true {
        if firstError == nil, !engine.isHalted {
          var index = 0
          while index < pending.count, running < jobs {
            let action = pending[index]
            let needs = dependencies[action.name] ?? []
            if !needs.isDisjoint(with: skipped) {
              skipped.insert(action.name)
              outcomes[action.name] = .skipped
              reporter.report(
                .actionFinished(
                  step: step.id, action: action.name, outcome: .skipped,
                  detail: "an action it needs was skipped"))
              pending.remove(at: index)
              // Actions listed earlier may need this one: look at them again.
              index = 0
              continue
            }
            if needs.isSubset(of: finished) {
              pending.remove(at: index)
              running += 1
              group.addTask {
                await self.slots?.acquire()
                let completion: Completion
                do {
                  let outcome = try await self.execute(action)
                  completion = Completion(name: action.name, result: .success(outcome))
                } catch {
                  completion = Completion(name: action.name, result: .failure(error))
                }
                await self.slots?.release()
                return completion
              }
              continue
            }
            index += 1
          }
        }
        guard running > 0, let completion = await group.next() else { break }
        let name = completion.name
        running -= 1
        switch completion.result {
        case .success(let outcome):
          outcomes[name] = outcome
          if outcome == .skipped { skipped.insert(name) } else { finished.insert(name) }
        case .failure(let error):
          // A real failure explains more than the interruption it may have caused.
          if firstError == nil || (firstError is Interrupted && !(error is Interrupted)) {
            firstError = error
          }
        }
      }
    }
    if let firstError { throw firstError }
    if !pending.isEmpty, engine.isHalted {
      throw HaltedBesideAFailure(step: step.id)
    }
    if let stuck = pending.first {
      // Only a malformed step gets here: `after` names an action the step does not have, or
      // actions wait for each other. Never report such a step as finished.
      let waiting = (dependencies[stuck.name] ?? []).subtracting(finished).sorted()
      throw StepFailure(
        step: step.id, action: stuck.name, command: stuck.command.description, termination: nil,
        awsErrorCode: nil,
        reason:
          "it waits for \(waiting.joined(separator: ", ")), which can never finish: the step names an action it does not have, or its actions wait for each other"
      )
    }
    reporter.report(.stepFinished(step: step.id, elapsedSeconds: Date().timeIntervalSince(started)))
    return outcomes
  }

  /// For each action, the actions of the step it must wait for: producers of the exports it uses, and `after`.
  static func dependencies(of actions: [Action]) -> [String: Set<String>] {
    var producers: [String: String] = [:]
    for action in actions {
      if let export = action.capture?.export { producers[export] = action.name }
    }
    var result: [String: Set<String>] = [:]
    for action in actions {
      var needs = Set(action.exportReferences.compactMap { producers[$0] })
      needs.formUnion(action.after)
      if let settlement = action.settledBy, settlement.step == nil {
        needs.insert(settlement.action)
      }
      needs.remove(action.name)
      result[action.name] = needs
    }
    return result
  }

  /// The actions the checkpoint has done that this run need not run again: all of them, but an
  /// ephemeral one (a login, a local build) that an action still to do depends on, directly or
  /// through other ephemeral actions.
  static func done(
    _ actions: [Action], _ dependencies: [String: Set<String>], _ checkpoint: Checkpoint,
    _ step: String
  ) -> Set<String> {
    var done = Set(
      actions.filter { !$0.repeatable && checkpoint.record(step, $0.name)?.status == .done }.map(
        \.name))
    var changed = true
    while changed {
      changed = false
      for action in actions where action.ephemeral && done.contains(action.name) {
        let needed = actions.contains {
          !done.contains($0.name) && dependencies[$0.name]?.contains(action.name) == true
        }
        if needed {
          done.remove(action.name)
          changed = true
        }
      }
    }
    return done
  }

  static func detail(_ action: Action, _ value: String?) -> String? {
    guard let value else { return nil }
    if let export = action.capture?.export { return "\(export)=\(value)" }
    return value
  }

  // MARK: - One action

  func execute(_ action: Action) async throws -> ActionOutcome {
    try engine.checkInterrupted()
    let key = "\(step.id)/\(action.name)"
    let values = engine.contextValues(await keeper.current)
    if let owner = action.deletes,
      let reason = Self.notOwned(await keeper.current.record(step.id, owner))
    {
      reporter.report(
        .actionFinished(step: step.id, action: action.name, outcome: .kept, detail: reason))
      return .kept
    }
    if let procedure = action.procedure {
      return try await run(procedure, of: action, key: key, values: values)
    }
    switch action.effect {
    case .manual(let instructions):
      return try await manual(
        action, key: key, instructions: engine.resolver.display(instructions, values: values))
    case .read:
      if let wait = action.wait { return try await poll(action, wait, key: key, values: values) }
      // A local action (a build, the package) is reported as run, not as read from AWS.
      let outcome: ActionOutcome = action.ephemeral ? .ranLocally : .read
      if let value = try await precheckValue(action, values: values) {
        return try await finish(action, key: key, outcome: outcome, value: value)
      }
      let value = try await read(action, values: values)
      return try await finish(action, key: key, outcome: outcome, value: value)
    case .write:
      let outcome = try await write(action, key: key, values: values)
      if engine.overwrites(action), [.recovered, .adopted, .alreadyDone].contains(outcome) {
        return try await overwrite(action, key: key)
      }
      return outcome
    }
  }

  private func write(_ action: Action, key: String, values: [String: String]) async throws
    -> ActionOutcome
  {
    let checkpoint = await keeper.current
    let last = try await journal.latest(lineage: checkpoint.lineage, action: key)
    if engine.overwrites(action),
      checkpoint.record(step.id, action.name)?.status == .done || last?.event == .result
    {
      return try await overwrite(action, key: key)
    }
    if last?.event == .result, !action.repeatable {
      // Killed after the journal got the result but before the checkpoint did: replay it.
      return try await finishRecorded(
        action, key: key, outcome: last?.outcome ?? .created, value: last?.value)
    }
    if last?.event == .intent, let lookup = action.lookup {
      // An earlier run started this write and never recorded it: look before creating again.
      if let found = try await find(action, lookup, values: values) {
        try await journal.append(
          JournalEntry(
            lineage: checkpoint.lineage, event: .result, action: key, value: found,
            outcome: .recovered))
        return try await finish(action, key: key, outcome: .recovered, value: found)
      }
    }
    if engine.options.adopt, let adoptLookup = action.adoptLookup,
      let found = try await find(action, adoptLookup, values: values)
    {
      try await journal.append(
        JournalEntry(
          lineage: checkpoint.lineage, event: .result, action: key, value: found, outcome: .adopted)
      )
      return try await finish(action, key: key, outcome: .adopted, value: found)
    }
    var settled: Settlement.Consequence?
    if last == nil, let settlement = action.settledBy, settles(settlement) {
      settled = settlement.consequence
    }
    if settled == .nothingToDo {
      let value = await keeper.current.record(step.id, action.settledBy?.action ?? "")?.value
      return try await finish(action, key: key, outcome: .alreadyDone, value: value)
    }
    if settled != .nothingToFind, let value = try await precheckValue(action, values: values) {
      // After an intent without a result, what the precheck finds is what that run made.
      let outcome: ActionOutcome =
        last?.event == .intent && action.deletes == nil ? .recovered : .alreadyDone
      if outcome == .recovered {
        try await journal.append(
          JournalEntry(
            lineage: checkpoint.lineage, event: .result, action: key, value: value,
            outcome: .recovered))
      }
      return try await finish(action, key: key, outcome: outcome, value: value)
    }
    let shown = engine.resolver.display(action.command, values: values)
    guard try approved(action, summary: action.summary, shown: shown) else { return .skipped }
    try await journal.append(
      JournalEntry(lineage: checkpoint.lineage, event: .intent, action: key, command: shown))
    let output = try await runRetryingTransient(action, action.command, values: values)
    if !output.succeeded {
      var explanation: String?
      if let code = awsErrorCode(in: output.stderrText), action.alreadyDoneErrors.contains(code) {
        var value: String?
        if let lookup = action.existingLookup ?? action.lookup {
          value = try await find(action, lookup, values: values)
        }
        if value != nil || action.capture == nil {
          try await journal.append(
            JournalEntry(
              lineage: checkpoint.lineage, event: .result, action: key, value: value,
              outcome: .alreadyDone))
          return try await finish(action, key: key, outcome: .alreadyDone, value: value)
        }
        // AWS says it exists, yet nothing this deployment can use is found (someone else's
        // resource, another VPC's, one scheduled for deletion): recording it done without its id
        // would only fail later, less clearly.
        explanation =
          "\(action.summary): it already exists, but without this deployment's ownership tags, so the tool will not use it silently"
          + (action.adoptLookup == nil
            ? "; remove it or rename it in the configuration"
            : "; pass --adopt to use the existing one as it is")
      }
      throw try await failed(
        action, key: key, lineage: checkpoint.lineage, shown: shown, output: output,
        explanation: explanation)
    }
    return try await succeeded(
      action, key: key, lineage: checkpoint.lineage, shown: shown, output: output,
      outcome: action.deletes == nil ? .created : .deleted)
  }

  /// Journals a write that AWS refused and returns the failure to throw.
  private func failed(
    _ action: Action, key: String, lineage: String, shown: String, output: ProcessOutput,
    explanation: String? = nil
  ) async throws -> StepFailure {
    try await journal.append(JournalEntry(lineage: lineage, event: .failed, action: key))
    return try await failure(action, shown: shown, output: output, explanation: explanation)
  }

  /// Captures what a write returned, journals it, and records it in the checkpoint.
  private func succeeded(
    _ action: Action, key: String, lineage: String, shown: String, output: ProcessOutput,
    outcome: ActionRecord.Outcome
  ) async throws -> ActionOutcome {
    let value = try await capture(action, output: output, shown: shown)
    try await journal.append(
      JournalEntry(lineage: lineage, event: .result, action: key, value: value, outcome: outcome))
    if outcome == .created { engine.createdThisRun.withLock { _ = $0.insert(key) } }
    return try await finishRecorded(action, key: key, outcome: outcome, value: value)
  }

  /// Asks the operator before a write (interactive runs only); false when the answer is skip.
  private func approved(_ action: Action, summary: String, shown: String) throws -> Bool {
    guard let prompter = engine.prompter, !approveAll.withLock({ $0 }) else { return true }
    switch prompter.approve(step: step.id, action: action.name, summary: summary, command: shown) {
    case .yes: return true
    case .all:
      approveAll.withLock { $0 = true }
      return true
    case .skip:
      reporter.report(
        .actionFinished(step: step.id, action: action.name, outcome: .skipped, detail: nil))
      return false
    case .quit:
      // Ctrl-C ends the prompt too (nil from ``TerminalInput``): say so rather than "quit".
      try engine.checkInterrupted()
      throw Interrupted("quit at the prompt")
    }
  }

  /// `--overwrite-secrets`: runs the action's `overwrite` write on the resource that exists already
  /// (journaled like any write) and records what it returns.
  private func overwrite(_ action: Action, key: String) async throws -> ActionOutcome {
    guard let command = action.overwrite else { return .alreadyDone }
    let checkpoint = await keeper.current
    let values = engine.contextValues(checkpoint)
    let shown = engine.resolver.display(command, values: values)
    guard try approved(action, summary: "overwrite: " + action.summary, shown: shown) else {
      return .skipped
    }
    try await journal.append(
      JournalEntry(lineage: checkpoint.lineage, event: .intent, action: key, command: shown))
    let output = try await engine.runCommand(
      command, values: values, step: step.id, action: action.name, audit: audit)
    guard output.succeeded else {
      throw try await failed(
        action, key: key, lineage: checkpoint.lineage, shown: shown, output: output)
    }
    return try await succeeded(
      action, key: key, lineage: checkpoint.lineage, shown: shown, output: output, outcome: .updated
    )
  }

  private func manual(_ action: Action, key: String, instructions: String) async throws
    -> ActionOutcome
  {
    reporter.report(.manual(step: step.id, action: action.name, instructions: instructions))
    if let prompter = engine.prompter,
      prompter.confirmManual(step: step.id, action: action.name, instructions: instructions)
    {
      return try await finish(action, key: key, outcome: .confirmed, value: nil)
    }
    try await keeper.record(
      key, ActionRecord(status: .pendingManual, outcome: nil, value: nil, export: nil))
    reporter.report(
      .actionFinished(step: step.id, action: action.name, outcome: .pendingManual, detail: nil))
    return .pendingManual
  }

  private func poll(_ action: Action, _ wait: Wait, key: String, values: [String: String])
    async throws -> ActionOutcome
  {
    let started = Date()
    while true {
      let shown = engine.resolver.display(wait.command, values: values)
      let output = try await engine.runCommand(
        wait.command, values: values, step: step.id, action: action.name, audit: audit)
      guard output.succeeded else { throw try await failure(action, shown: shown, output: output) }
      let state =
        output.stdoutText.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
      let elapsed = Date().timeIntervalSince(started)
      reporter.report(
        .waiting(
          step: step.id, action: action.name, state: state, elapsedSeconds: elapsed,
          until: wait.success.sorted()))
      if wait.success.contains(state) {
        answeredThisRun.withLock { $0.byCommand[shown] = output }
        return try await finish(action, key: key, outcome: .read, value: nil)
      }
      if wait.failure.contains(state) || elapsed >= wait.timeoutSeconds {
        let reason =
          wait.failure.contains(state)
          ? "reached state '\(state)' while waiting for \(wait.success.sorted().joined(separator: " or "))"
          : "still '\(state)' after \(Int(elapsed)) s (limit \(Int(wait.timeoutSeconds)) s); run again to keep waiting"
        let failure = StepFailure(
          step: step.id, action: action.name, command: shown, termination: nil, awsErrorCode: nil,
          reason: reason)
        try await keeper.fail(step: step.id, action: action.name, message: reason)
        throw failure
      }
      try await engine.sleepInterruptibly(seconds: wait.intervalSeconds)
    }
  }

  /// The value a precheck decides the action with, or nil when the command must run.
  /// A precheck that fails, or whose program is not installed (no `git` on this machine), decides
  /// nothing: the action's own command runs.
  private func precheckValue(_ action: Action, values: [String: String]) async throws -> String? {
    guard let precheck = action.precheck else { return nil }
    let output: ProcessOutput
    do {
      output = try await engine.runCommand(
        precheck.command, values: values, step: step.id, action: action.name, audit: audit)
    } catch let failure as StepFailure where failure.termination == nil {
      return nil
    }
    return output.succeeded ? precheck.upToDate(output.stdoutText, values) : nil
  }

  /// Runs `command`; while it fails with one of the action's transient errors, runs it again, for
  /// a bounded time.
  private func runRetryingTransient(_ action: Action, _ command: Command, values: [String: String])
    async throws -> ProcessOutput
  {
    let started = Date()
    var attempt = 1
    while true {
      let output = try await engine.runCommand(
        command, values: values, step: step.id, action: action.name, audit: audit)
      guard !output.succeeded, let transient = action.transientErrors,
        transient.matches(output.stderrText),
        Date().timeIntervalSince(started) + transient.intervalSeconds <= transient.seconds
      else { return output }
      let reason =
        awsErrorCode(in: output.stderrText).map { "\($0) (can clear up by itself)" }
        ?? "a failure that can clear up by itself"
      reporter.report(
        .retrying(
          step: step.id, action: action.name, reason: reason, attempt: attempt,
          delaySeconds: transient.intervalSeconds))
      audit.write(
        "[\(step.id)/\(action.name)] retry \(attempt) after a transient failure, waiting \(transient.intervalSeconds)s"
      )
      try await engine.sleepInterruptibly(seconds: transient.intervalSeconds)
      attempt += 1
    }
  }

  /// Runs a lookup; returns the first value matching the pattern, or nil when nothing exists.
  private func find(_ action: Action, _ lookup: Lookup, values: [String: String]) async throws
    -> String?
  {
    let output = try await engine.runCommand(
      lookup.command, values: values, step: step.id, action: action.name, audit: audit)
    guard output.succeeded else {
      if lookup.notFoundErrors.contains(where: {
        output.stderrText.range(of: $0, options: .regularExpression) != nil
      }) {
        return nil
      }
      let shown = engine.resolver.display(lookup.command, values: values)
      throw try await failure(action, shown: shown, output: output)
    }
    let pattern = lookup.pattern ?? action.capture?.pattern ?? ".+"
    let candidates =
      lookup.extract.map { extractedValues($0, in: output.stdoutText) }
      ?? output.stdoutText.split(whereSeparator: { $0 == "\t" || $0 == "\n" || $0 == " " })
      .map(String.init)
    let matches = candidates.filter { Capture(export: nil, pattern: pattern).accepts($0) }
    if matches.count > 1 {
      reporter.report(
        .warning(
          "\(step.id)/\(action.name): \(matches.count) existing resources match (\(matches.joined(separator: ", "))); using \(matches[0])"
        ))
    }
    return matches.first
  }

  /// A read action's value: from the answer this run already had to the same command, else from
  /// the command, whose answer is kept for the rest of the run (``answeredThisRun``).
  private func read(_ action: Action, values: [String: String]) async throws -> String? {
    let shown = engine.resolver.display(action.command, values: values)
    let output: ProcessOutput
    if !action.repeatable, let answer = answeredThisRun.withLock({ $0.byCommand[shown] }) {
      output = answer
    } else {
      output = try await runRetryingTransient(action, action.command, values: values)
      guard output.succeeded else { throw try await failure(action, shown: shown, output: output) }
    }
    answeredThisRun.withLock {
      $0.byCommand[shown] = output
      $0.byAction[action.name] = output.stdoutText
    }
    return try await capture(action, output: output, shown: shown)
  }

  /// Whether `settlement` spares an action its precheck (or its command) in this run.
  private func settles(_ settlement: Settlement) -> Bool {
    if settlement.unlisted != nil {
      guard let answer = answeredThisRun.withLock({ $0.byAction[settlement.action] }) else {
        return false
      }
      return settlement.leavesOut(of: answer)
    }
    let key = "\(settlement.step ?? step.id)/\(settlement.action)"
    return engine.createdThisRun.withLock { $0.contains(key) }
  }

  private func capture(_ action: Action, output: ProcessOutput, shown: String) async throws
    -> String?
  {
    guard let capture = action.capture else { return nil }
    let value = capture.value(in: output.stdoutText)
    guard capture.accepts(value) else {
      let masked = engine.resolver.secrets.mask(String(value.prefix(200)))
      let reason =
        "the output '\(masked)' is not a valid \(capture.export ?? "value") (expected \(capture.pattern))"
      try await keeper.fail(step: step.id, action: action.name, message: reason)
      throw StepFailure(
        step: step.id, action: action.name, command: shown, termination: output.termination,
        awsErrorCode: nil, reason: reason)
    }
    return value
  }

  /// - Parameter explanation: what the failure means, shown before the command's error output
  ///   (defaults to the action's advice for the AWS error code, if any).
  private func failure(
    _ action: Action, shown: String, output: ProcessOutput, explanation: String? = nil
  ) async throws -> StepFailure {
    try engine.checkInterrupted()
    let stderr = engine.resolver.secrets.mask(output.stderrText)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    var reason = explainAWSFailure(stderr)
    let advice = [
      explanation, awsErrorCode(in: output.stderrText).flatMap { action.errorAdvice[$0] },
    ]
    .compactMap { $0 }
    if !advice.isEmpty { reason = advice.joined(separator: "; ") + "\n" + reason }
    let failure = StepFailure(
      step: step.id, action: action.name, command: shown, termination: output.termination,
      awsErrorCode: awsErrorCode(in: output.stderrText), reason: reason)
    try await keeper.fail(step: step.id, action: action.name, message: reason)
    reporter.report(.actionFailed(step: step.id, action: action.name, message: reason))
    return failure
  }

  private func finish(_ action: Action, key: String, outcome: ActionOutcome, value: String?)
    async throws -> ActionOutcome
  {
    let recordOutcome: ActionRecord.Outcome =
      switch outcome {
      case .created: .created
      case .recovered: .recovered
      case .adopted: .adopted
      case .alreadyDone: .alreadyDone
      case .confirmed: .confirmed
      case .updated: .updated
      case .deleted: .deleted
      default: .read
      }
    try await keeper.record(
      key,
      ActionRecord(
        status: .done, outcome: recordOutcome, value: value, export: action.capture?.export))
    reporter.report(
      .actionFinished(
        step: step.id, action: action.name, outcome: outcome, detail: Self.detail(action, value)))
    return outcome
  }
}

extension StepExecution {
  fileprivate func finishRecorded(
    _ action: Action, key: String, outcome: ActionRecord.Outcome, value: String?
  ) async throws -> ActionOutcome {
    let mapped: ActionOutcome =
      switch outcome {
      case .created: .created
      case .recovered: .recovered
      case .adopted: .adopted
      case .alreadyDone: .alreadyDone
      case .read: .read
      case .confirmed: .confirmed
      case .updated: .updated
      case .deleted: .deleted
      }
    return try await finish(action, key: key, outcome: mapped, value: value)
  }
}

// MARK: - Teardown and procedures

extension StepExecution {
  /// Why a teardown action must leave the resource of `record` alone, or nil when this deployment
  /// created it.
  static func notOwned(_ record: ActionRecord?) -> String? {
    guard let record, record.status == .done, let outcome = record.outcome else {
      return "never created by this deployment"
    }
    switch outcome {
    case .created, .recovered, .updated, .deleted: return nil
    case .adopted: return "adopted (--adopt), not created by this deployment"
    case .alreadyDone: return "it existed already, not created by this deployment"
    case .read, .confirmed: return "not a resource this deployment created"
    }
  }

  /// Runs a procedure action: asked and journaled like any write when it writes, recorded like
  /// any action when it ends.
  func run(_ procedure: Procedure, of action: Action, key: String, values: [String: String])
    async throws -> ActionOutcome
  {
    let checkpoint = await keeper.current
    let shown = procedure.outline.map { line -> String in
      switch line {
      case .command(let command): engine.resolver.display(command, values: values)
      case .note(let note): engine.resolver.display(note, values: values)
      }
    }.joined(separator: "\n")
    if action.isWrite {
      guard try approved(action, summary: action.summary, shown: shown) else { return .skipped }
      try await journal.append(
        JournalEntry(
          lineage: checkpoint.lineage, event: .intent, action: key, command: procedure.name))
    }
    let context = ProcedureContext(
      engine: engine, step: step.id, action: action.name, keeper: keeper, audit: audit,
      values: values)
    let value: String?
    do {
      value = try await procedure.body(context)
    } catch let error as ProcedureFailure {
      // A command Ctrl-C stopped fails too: the interruption is the real story.
      try engine.checkInterrupted()
      if action.isWrite {
        try await journal.append(
          JournalEntry(lineage: checkpoint.lineage, event: .failed, action: key))
      }
      try await keeper.fail(step: step.id, action: action.name, message: error.reason)
      reporter.report(.actionFailed(step: step.id, action: action.name, message: error.reason))
      throw StepFailure(
        step: step.id, action: action.name, command: error.command ?? procedure.name,
        termination: nil,
        awsErrorCode: nil, reason: error.reason)
    }
    if let capture = action.capture, let value, !capture.accepts(value) {
      let reason =
        "the procedure returned '\(value.prefix(200))', not a valid \(capture.export ?? "value") (expected \(capture.pattern))"
      try await keeper.fail(step: step.id, action: action.name, message: reason)
      throw StepFailure(
        step: step.id, action: action.name, command: procedure.name, termination: nil,
        awsErrorCode: nil,
        reason: reason)
    }
    let outcome: ActionOutcome =
      action.deletes != nil ? .deleted : action.isWrite ? .updated : .read
    if action.isWrite {
      try await journal.append(
        JournalEntry(
          lineage: checkpoint.lineage, event: .result, action: key, value: value,
          outcome: outcome == .deleted ? .deleted : .updated))
    }
    return try await finish(action, key: key, outcome: outcome, value: value)
  }
}

/// What a child task of ``StepExecution/run()`` returns: the action's name and how it ended.
///
/// A struct, not the tuple `(String, Result<ActionOutcome, Error>)`: with that tuple as the task
/// group's child result, the release build of Swift 6.3.1 on Linux handed `group.next()` a
/// corrupt name (a crash in `swift_retain`, or an action reported as never finished), while the
/// debug build worked.
struct Completion: Sendable {
  let name: String
  let result: Result<ActionOutcome, Error>
}

/// One step of a run that ran beside others: its index in the run, and how it ended.
struct StepCompletion: Sendable {
  let index: Int
  let result: Result<[String: ActionOutcome], Error>
}

/// A step stopped early because another step of the run failed (the engine reports that failure).
struct HaltedBesideAFailure: Error, Sendable {
  let step: String
}

/// At most `limit` actions running at once, across the steps of a run (`--jobs`).
actor ActionSlots {
  private var free: Int
  private var waiting: [CheckedContinuation<Void, Never>] = []

  init(_ limit: Int) { free = max(1, limit) }

  func acquire() async {
    if free > 0 {
      free -= 1
      return
    }
    await withCheckedContinuation { waiting.append($0) }
  }

  func release() {
    if waiting.isEmpty {
      free += 1
    } else {
      waiting.removeFirst().resume()
    }
  }
}

/// The answers of a step's reads in one run (``StepExecution``).
struct AnsweredReads: Sendable {
  /// By the command as shown (its values filled in).
  var byCommand: [String: ProcessOutput] = [:]
  /// The standard output of each read action that ran, by action name (``Settlement/unlisted``).
  var byAction: [String: String] = [:]
}
