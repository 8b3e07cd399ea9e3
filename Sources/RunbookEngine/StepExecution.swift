import Foundation
import RunbookProcess
import RunbookState
import Synchronization

/// The rules a step's run follows that need no run: which actions wait for which, which are done
/// already, what a finished action shows, which resources a teardown leaves alone.
enum StepExecution {
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
      if let resource = action.configures { needs.insert(resource) }
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

  /// The writes of `actions` that a run killed between the call and its record could only repeat
  /// blindly: no lookup finds what it made, no precheck decides, no AWS error says it is done
  /// already, and it is not marked ``Action/idempotent``. A runbook's catalogue has none
  /// (`CatalogueTests`).
  static func blindWrites(_ actions: [Action]) -> [String] {
    actions.filter(repeatsBlindly).map(\.name)
  }

  /// Whether running `action` again after a run stopped between its call and its answer could
  /// make its resource twice: the engine refuses to (``StepRun/write(_:key:values:)``).
  static func repeatsBlindly(_ action: Action) -> Bool {
    // A delete repeated finds nothing left to delete (and says so with its not-found error).
    action.isWrite && action.deletes == nil && action.procedure == nil && action.lookup == nil
      && !action.idempotent && action.alreadyDoneErrors.isEmpty && action.precheck == nil
  }

  static func detail(_ action: Action, _ value: String?) -> String? {
    guard let value else { return nil }
    if let export = action.capture?.export { return "\(export)=\(value)" }
    return value
  }

  /// Why a setting (``Action/configures``) must leave the resource of `record` as it is, or nil
  /// when this deployment made it or adopted it: only one that existed already is left alone.
  static func notConfigurable(_ record: ActionRecord?) -> String? {
    guard record?.outcome == .alreadyDone else { return nil }
    return "it existed already, not created by this deployment: its settings are left as they are"
  }

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
}
