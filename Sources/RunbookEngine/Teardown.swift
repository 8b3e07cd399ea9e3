import Foundation
import RunbookProcess
import RunbookState

/// A step's teardown as a step of its own (`runbook destroy`): its actions are the step's
/// ``Step/teardown(for:)``, under the step's own name, so they are journaled and checkpointed like
/// any others and a killed destroy resumes. When all of them have finished (deleted, kept, or
/// gone already), the engine forgets the step: a later `run` creates it afresh.
package struct TeardownStep<Configuration: RunConfiguration>: Step {
  package let base: any Step<Configuration>

  package init(_ base: any Step<Configuration>) { self.base = base }

  package var id: String { base.id }
  package var section: String { base.section }
  package var title: String { "delete " + base.title }
  package var runsByDefault: Bool { false }

  package func actions(for deployment: Configuration) -> [Action] { base.teardown(for: deployment) }
}

extension Action {
  /// This action as part of a teardown: it runs only when `owner` created its resource.
  package func deleting(_ owner: String) -> Action {
    var copy = self
    copy.deletes = owner
    return copy
  }
}
