import Foundation
import RunbookProcess
import RunbookState
import Synchronization

extension StepRun {
  // MARK: - One action

  func execute(_ action: Action) async throws -> ActionOutcome {
    try engine.checkInterrupted()
    let key = "\(step.id)/\(action.name)"
    let values = engine.contextValues(await keeper.current)
    if let owner = action.deletes,
      let reason = StepExecution.notOwned(await keeper.current.record(step.id, owner))
    {
      reporter.report(
        .actionFinished(step: step.id, action: action.name, outcome: .kept, detail: reason))
      return .kept
    }
    if let resource = action.configures,
      let reason = StepExecution.notConfigurable(await keeper.current.record(step.id, resource))
    {
      // Recorded done (nothing to apply), so a rerun makes no call; the report says why.
      try await keeper.record(
        key, ActionRecord(status: .done, outcome: .alreadyDone, value: nil, export: nil))
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
      // A local action (a build, the package) is reported as run, not as read from AWS. (An
      // ephemeral read of the tool the account comes from, a listing valid for one run, is a read;
      // a registry login, piped into a local program, ran locally.)
      let outcome: ActionOutcome =
        action.ephemeral
          && (action.command.tool != engine.preflight.account.tool
            || !action.command.pipedInto.isEmpty)
        ? .ranLocally : .read
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

  func write(_ action: Action, key: String, values: [String: String]) async throws
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
    if last?.event == .intent, StepExecution.repeatsBlindly(action) {
      // An earlier run made this call and stopped before its answer: nothing can tell whether
      // AWS did it, and nothing says doing it twice is safe.
      let reason =
        "an earlier run started '\(action.summary)' and stopped before its answer, and this action can neither look up what it made nor be repeated safely: "
        + "check in AWS whether it happened, then 'runbook reset \(step.id)' to run the step again"
      try await keeper.fail(step: step.id, action: action.name, message: reason)
      reporter.report(.actionFailed(step: step.id, action: action.name, message: reason))
      throw StepFailure(
        step: step.id, action: action.name,
        command: engine.resolver.display(action.command, values: values), termination: nil,
        reason: reason)
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
        (last?.event == .intent || action.precheck?.provesOwnership == true
          || action.precheck?.ownership != nil)
          && action.deletes == nil ? .recovered : .alreadyDone
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
      if let code = engine.dialect.errorCode(in: output.stderrText),
        action.alreadyDoneErrors.contains(code)
      {
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
  func failed(
    _ action: Action, key: String, lineage: String, shown: String, output: ProcessOutput,
    explanation: String? = nil
  ) async throws -> StepFailure {
    try await journal.append(JournalEntry(lineage: lineage, event: .failed, action: key))
    return try await failure(action, shown: shown, output: output, explanation: explanation)
  }

  /// Captures what a write returned, journals it, and records it in the checkpoint.
  func succeeded(
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
  func approved(_ action: Action, summary: String, shown: String) throws -> Bool {
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
  func overwrite(_ action: Action, key: String) async throws -> ActionOutcome {
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

  func manual(_ action: Action, key: String, instructions: String) async throws
    -> ActionOutcome
  {
    reporter.report(.manual(step: step.id, action: action.name, instructions: instructions))
    if let prompter = engine.prompter,
      prompter.confirmManual(step: step.id, action: action.name, instructions: instructions)
    {
      // A manual action that captures an export records "confirmed" in it: a later step that
      // needs the work done needs that export.
      return try await finish(
        action, key: key, outcome: .confirmed, value: action.capture == nil ? nil : "confirmed")
    }
    try await keeper.record(
      key, ActionRecord(status: .pendingManual, outcome: nil, value: nil, export: nil))
    reporter.report(
      .actionFinished(step: step.id, action: action.name, outcome: .pendingManual, detail: nil))
    return .pendingManual
  }
}
