import Foundation
import RunbookProcess
import RunbookState
import Synchronization

extension StepRun {
  func poll(_ action: Action, _ wait: Wait, key: String, values: [String: String])
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
          step: step.id, action: action.name, command: shown, termination: nil, errorCode: nil,
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
  func precheckValue(_ action: Action, values: [String: String]) async throws -> String? {
    guard let precheck = action.precheck else { return nil }
    let output: ProcessOutput
    do {
      output = try await engine.runCommand(
        precheck.command, values: values, step: step.id, action: action.name, audit: audit)
    } catch let failure as StepFailure where failure.termination == nil {
      return nil
    }
    guard output.succeeded else { return nil }
    if let reason = precheck.refusal?(output.stdoutText, values) {
      let shown = engine.resolver.display(precheck.command, values: values)
      throw try await failure(action, shown: shown, output: output, explanation: reason)
    }
    let value = precheck.upToDate(output.stdoutText, values)
    guard let value, let ownership = precheck.ownership else { return value }
    let about = values.merging([Precheck.found: value]) { _, found in found }
    let owner = try await engine.runCommand(
      ownership.command, values: about, step: step.id, action: action.name, audit: audit)
    if owner.succeeded, ownership.owned(owner.stdoutText, about) { return value }
    let shown = engine.resolver.display(ownership.command, values: about)
    throw try await failure(action, shown: shown, output: owner, explanation: ownership.refusal)
  }

  /// Runs `command`; while it fails with one of the action's transient errors, runs it again, for
  /// a bounded time.
  func runRetryingTransient(_ action: Action, _ command: Command, values: [String: String])
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
        engine.dialect.errorCode(in: output.stderrText).map { "\($0) (can clear up by itself)" }
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
  func find(_ action: Action, _ lookup: Lookup, values: [String: String]) async throws
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
  func read(_ action: Action, values: [String: String]) async throws -> String? {
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
  func settles(_ settlement: Settlement) -> Bool {
    if settlement.unlisted != nil {
      guard let answer = answeredThisRun.withLock({ $0.byAction[settlement.action] }) else {
        return false
      }
      return settlement.leavesOut(of: answer)
    }
    let key = "\(settlement.step ?? step.id)/\(settlement.action)"
    return engine.createdThisRun.withLock { $0.contains(key) }
  }

  func capture(_ action: Action, output: ProcessOutput, shown: String) async throws
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
        errorCode: nil, reason: reason)
    }
    return value
  }

  /// - Parameter explanation: what the failure means, shown before the command's error output
  ///   (defaults to the action's advice for the AWS error code, if any).
  func failure(
    _ action: Action, shown: String, output: ProcessOutput, explanation: String? = nil
  ) async throws -> StepFailure {
    try engine.checkInterrupted()
    let stderr = engine.resolver.secrets.mask(output.stderrText)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    var reason = engine.dialect.explain(stderr)
    let advice = [
      explanation,
      engine.dialect.errorCode(in: output.stderrText).flatMap { action.errorAdvice[$0] },
    ]
    .compactMap { $0 }
    if !advice.isEmpty { reason = advice.joined(separator: "; ") + "\n" + reason }
    let failure = StepFailure(
      step: step.id, action: action.name, command: shown, termination: output.termination,
      errorCode: engine.dialect.errorCode(in: output.stderrText),
      errorCodeLabel: engine.dialect.errorCodeLabel, reason: reason)
    try await keeper.fail(step: step.id, action: action.name, message: reason)
    reporter.report(.actionFailed(step: step.id, action: action.name, message: reason))
    return failure
  }

  func finish(_ action: Action, key: String, outcome: ActionOutcome, value: String?)
    async throws -> ActionOutcome
  {
    // Made or found by a read in this run: its id exists, so a "not found" for it a moment
    // later is a service that does not see it yet (a VPC made by hand just before an --adopt run
    // is as new to EC2 as one this run made).
    if [.created, .recovered, .adopted, .alreadyDone].contains(outcome),
      let export = action.capture?.export
    {
      engine.freshExports.withLock { _ = $0.insert(export) }
    }
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
        status: .done, outcome: recordOutcome, value: value, export: action.capture?.export,
        command: engine.recordedCommand(action)))
    reporter.report(
      .actionFinished(
        step: step.id, action: action.name, outcome: outcome,
        detail: StepExecution.detail(action, value)))
    return outcome
  }
}

extension StepRun {
  func finishRecorded(
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
