import Foundation
import RunbookProcess
import RunbookState

/// What `run --refresh` does to converge the deployment with AWS and today's configuration, and
/// what `plan --refresh` shows of it: done actions to run again (each with why), and what it
/// refuses to replace by itself.
package struct RefreshPlan: Sendable, Hashable {
  /// A done action that runs again.
  package struct Rerun: Sendable, Hashable {
    package var step: String
    package var action: String
    /// Why, in words (`missing: ...`, `uses SUBNET_PRIVATE_2A, which network/subnet-private-2a
    /// makes anew`).
    package var reason: String
    /// The id the checkpoint records for it now (replaced by the one the rerun captures).
    package var recorded: String?
    package var key: String { "\(step)/\(action)" }
  }

  /// A done action whose resource differs in what cannot be changed in place (a VPC's CIDR):
  /// only destroying the step and running it again converges it.
  package struct Refusal: Sendable, Hashable {
    package var step: String
    package var action: String
    package var reason: String
  }

  package var reruns: [Rerun] = []
  package var refusals: [Refusal] = []
  /// Done actions of steps outside this run that use an export made anew: they keep the old id
  /// until their step runs with `--refresh` as well.
  package var outside: [Rerun] = []
  /// Everything `drift` found, `extra` resources included (reported, never acted on).
  package var findings: [DriftFinding] = []
  package var configurationDrift: [ConfigurationDrift] = []

  package var keys: Set<String> { Set(reruns.map(\.key)) }
}

/// `run --refresh` found a done action it cannot converge without replacing its resource; nothing
/// was written.
package struct RefreshRefused: Error, Sendable, Hashable, CustomStringConvertible {
  package var refusals: [RefreshPlan.Refusal]

  package var description: String {
    var steps: [String] = []
    for refusal in refusals where !steps.contains(refusal.step) { steps.append(refusal.step) }
    let names = steps.joined(separator: " ")
    let lines = refusals.map { "  \($0.step)/\($0.action): \($0.reason)" }
    return
      ([
        "refresh refused: what these actions made cannot be changed in place, and replacing it is not done silently:"
      ]
      + lines
      + [
        "  nothing was written. To replace it: 'runbook destroy \(names)', then 'runbook run \(names)'; or make the configuration say what AWS has"
      ]).joined(separator: "\n")
  }
}

extension Action {
  /// Whether the action applies a setting to a resource made elsewhere, which running it again
  /// puts back (a retention, a VPC attribute, a modify or put call): a setting made for a resource
  /// (``configures``), or a write that captures no id and has no error meaning "exists already".
  /// A create cannot be run again on a resource that exists.
  package var appliesSetting: Bool {
    guard isWrite, procedure == nil, deletes == nil else { return false }
    return configures != nil || (capture == nil && alreadyDoneErrors.isEmpty)
  }
}

extension Engine {
  /// What `run --refresh` would do for `steps`: reads every resource the checkpoint records that
  /// its action can read back (``drift(_:)``), and compares each recorded command with today's.
  /// Reads only.
  package func refreshPlan(_ steps: [any Step<Configuration>]) async throws -> RefreshPlan {
    let checkpoint = try await loadCheckpoint()
    var plan = RefreshPlan()
    guard let checkpoint else { return plan }
    plan.findings = try await drift(steps)
    plan.configurationDrift = configurationDrift(steps, checkpoint: checkpoint)
    let actions = Dictionary(
      steps.flatMap { step in step.actions(for: deployment).map { ("\(step.id)/\($0.name)", $0) } },
      uniquingKeysWith: { first, _ in first })
    var reasons: [String: String] = [:]
    func rerun(_ key: String, _ reason: String) {
      if reasons[key] == nil { reasons[key] = reason }
    }
    for finding in plan.findings {
      let key = "\(finding.step)/\(finding.action)"
      guard let action = actions[key] else { continue }
      switch finding.kind {
      case "missing":
        rerun(key, "missing: AWS no longer has it (\(finding.field) \(finding.expected))")
      case "changed" where action.observation?.converge != nil:
        continue  // the operator's to converge, as the finding says (a rule added by hand)
      case "changed" where action.appliesSetting:
        rerun(
          key,
          "changed: \(finding.field) is \(finding.actual ?? "?"), the configuration says \(finding.expected)"
        )
      case "changed":
        plan.refusals.append(
          RefreshPlan.Refusal(
            step: finding.step, action: finding.action,
            reason:
              "\(finding.field) is \(finding.actual ?? "?") on AWS, the configuration says \(finding.expected)"
          ))
      default: continue  // `extra`: reported by drift, never acted on
      }
    }
    for drift in plan.configurationDrift {
      let key = "\(drift.step)/\(drift.action)"
      guard let action = actions[key], reasons[key] == nil else { continue }
      let (recorded, today) = drift.difference
      if action.appliesSetting {
        rerun(key, "done with another configuration: recorded \(recorded), today \(today)")
      } else if !plan.refusals.contains(where: {
        $0.step == drift.step && $0.action == drift.action
      }) {
        plan.refusals.append(
          RefreshPlan.Refusal(
            step: drift.step, action: drift.action,
            reason: "done with another configuration: recorded \(recorded), today \(today)"))
      }
    }
    let inRun = Set(steps.map(\.id))
    addDependents(of: &reasons, checkpoint: checkpoint, inRun: inRun, outside: &plan.outside)
    plan.reruns = steps.flatMap { step in
      step.actions(for: deployment).compactMap { action -> RefreshPlan.Rerun? in
        let key = "\(step.id)/\(action.name)"
        guard let reason = reasons[key] else { return nil }
        return RefreshPlan.Rerun(
          step: step.id, action: action.name, reason: reason,
          recorded: checkpoint.record(step.id, action.name)?.value)
      }
    }
    return plan
  }

  /// Adds to `reasons` every done action that uses an export of an action run again (a subnet
  /// made anew needs its route table association again), or sets the resource of one
  /// (``Action/configures``), until nothing more is added. Such actions of steps outside the run
  /// go to `outside`.
  private func addDependents(
    of reasons: inout [String: String], checkpoint: Checkpoint, inRun: Set<String>,
    outside: inout [RefreshPlan.Rerun]
  ) {
    let all = catalogue.flatMap { step in step.actions(for: deployment).map { (step.id, $0) } }
    var producers: [String: String] = [:]
    for (step, action) in all {
      if let export = action.capture?.export { producers[export] = "\(step)/\(action.name)" }
    }
    var changed = true
    while changed {
      changed = false
      for (step, action) in all {
        let key = "\(step)/\(action.name)"
        guard reasons[key] == nil, !action.repeatable, !action.ephemeral,
          checkpoint.record(step, action.name)?.status == .done
        else { continue }
        var reason: String?
        if let export = action.exportReferences.first(where: {
          producers[$0].map { reasons[$0] != nil } == true
        }) {
          reason = "uses \(export), which \(producers[export]!) makes anew"
        } else if let resource = action.configures, reasons["\(step)/\(resource)"] != nil {
          reason = "sets \(step)/\(resource), which is made anew"
        }
        guard let reason else { continue }
        if inRun.contains(step) {
          reasons[key] = reason
          changed = true
        } else if !outside.contains(where: { $0.key == key }) {
          outside.append(
            RefreshPlan.Rerun(
              step: step, action: action.name, reason: reason,
              recorded: checkpoint.record(step, action.name)?.value))
        }
      }
    }
  }

  /// `run --refresh` before the lock: the plan, read with the credentials' account checked
  /// against the checkpoint's first (another account's reads would find everything missing).
  /// Throws ``RefreshRefused`` when a resource would have to be replaced. Nil without `--refresh`.
  func refreshBeforeRun(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?) async throws
    -> RefreshPlan?
  {
    guard options.refresh, let checkpoint else { return nil }
    if let pinned = checkpoint.account {
      let account = try await callerAccount()
      if pinned != account {
        throw CheckpointError.foreignAccount(
          file: state.stateFile, checkpoint: pinned, credentials: account)
      }
    }
    let plan = try await refreshPlan(steps)
    if !plan.refusals.isEmpty { throw RefreshRefused(refusals: plan.refusals) }
    return plan
  }

  /// ``plan(_:)`` as `run --refresh` would run it: the actions of `refresh` shown as still to do.
  package func plan(_ steps: [any Step<Configuration>], refresh: RefreshPlan) async throws
    -> [PlannedStep]
  {
    try plan(steps, checkpoint: refreshed(try await loadCheckpoint(), refresh))
  }

  /// The checkpoint as the refresh leaves it before anything runs: the records (and exports) of
  /// the actions run again are gone, so they and what waits for them run as if never done.
  func refreshed(_ checkpoint: Checkpoint?, _ plan: RefreshPlan?) -> Checkpoint? {
    guard var checkpoint, let plan, !plan.reruns.isEmpty else { return checkpoint }
    for rerun in plan.reruns { checkpoint.forget(action: rerun.key) }
    return checkpoint
  }

  /// Under the lock, before the first action: journals a reset of each action run again (with
  /// its reason), then forgets their records in one checkpoint write. Journal first: a kill
  /// between the two leaves them recorded done (a next `--refresh` finds them again), never a
  /// journal result that would be replayed as if the old resource were still there. An action
  /// whose record changed since the plan was read (another run) is left alone.
  func applyResets(_ plan: RefreshPlan, keeper: CheckpointKeeper, audit: AuditLog) async throws {
    let current = await keeper.current
    let keys = plan.reruns.filter { rerun in
      let record = current.actions[rerun.key]
      return record?.status == .done && record?.value == rerun.recorded
    }
    guard !keys.isEmpty else { return }
    for rerun in keys {
      try await state.journal.append(
        JournalEntry(
          lineage: current.lineage, event: .reset, action: rerun.key, reason: rerun.reason))
      audit.write("refresh: \(rerun.key) runs again: \(rerun.reason)")
      reporter.report(.note("  \(rerun.key) runs again: \(rerun.reason)"))
    }
    try await keeper.forget(actions: keys.map(\.key))
  }
}
