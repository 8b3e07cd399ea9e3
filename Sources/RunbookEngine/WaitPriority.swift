import Foundation

/// Which actions head long waits, so that when `--jobs` leaves a choice the free slot goes to
/// the action the most waiting depends on: the DB subnet group before a log group's retention,
/// because a DB instance's ten minutes follow it (issue 19, "start the long poles first").
enum WaitPriority {
  /// For each action (`step/action`), the longest chain of waits from it to the end of the run:
  /// its own wait's timeout (the only length the engine knows of a wait, and the waits' order of
  /// length: a DB instance's over a load balancer's over a NAT gateway's) plus the longest such
  /// chain among the actions that use what it makes. Actions heading no wait have 0.
  static func of(_ steps: [(id: String, actions: [Action])]) -> [String: Double] {
    var producers: [String: String] = [:]
    for step in steps {
      for action in step.actions {
        if let export = action.capture?.export { producers[export] = "\(step.id)/\(action.name)" }
      }
    }
    // Who uses each action's work: the reverse of what each action waits for.
    var users: [String: Set<String>] = [:]
    var weight: [String: Double] = [:]
    for step in steps {
      let within = StepExecution.dependencies(of: step.actions)
      for action in step.actions {
        let key = "\(step.id)/\(action.name)"
        weight[key] = action.wait?.timeoutSeconds ?? 0
        var needs = Set((within[action.name] ?? []).map { "\(step.id)/\($0)" })
        needs.formUnion(action.exportReferences.compactMap { producers[$0] })
        for need in needs where need != key { users[need, default: []].insert(key) }
      }
    }
    var chains: [String: Double] = [:]
    var visiting = Set<String>()
    func chain(_ key: String) -> Double {
      if let known = chains[key] { return known }
      // A cycle (none in a valid runbook) counts no further.
      guard visiting.insert(key).inserted else { return 0 }
      let longest = (users[key] ?? []).map(chain).max() ?? 0
      visiting.remove(key)
      chains[key] = (weight[key] ?? 0) + longest
      return chains[key]!
    }
    for key in weight.keys { _ = chain(key) }
    return chains
  }
}
