import Foundation

/// What a resource created a moment ago, by another action of the same run, tells about an action
/// that follows it. Each aws CLI call costs about a second: a read whose answer is already known
/// is not made. Only a creation in this very run counts: after an interruption, or when the
/// resource existed already, the action reads as usual.
package struct Settlement: Sendable, Hashable {
  package enum Consequence: Sendable, Hashable {
    /// The creation did this action's work too (a service created on the registered revision
    /// needs no `update-service`): the action is recorded done, with the creating action's value.
    case nothingToDo
    /// The precheck cannot find anything on a resource this new (a role created a moment ago has
    /// no inline policy, a new ALB no listener): the write runs without it.
    case nothingToFind
  }

  /// The action of the step whose creation settles it (or, with ``unlisted``, whose read does).
  package var action: String
  package var consequence: Consequence
  /// Set when the settling action belongs to an earlier step (`network` for the VPC): nothing
  /// can be found in a VPC this run created a moment ago. That step runs first anyway.
  package var step: String? = nil
  /// Set when `action` is a read that lists names (the task definition families of the
  /// deployment): this action is settled when that read ran in this run and did not list this
  /// name. One listing stands in for a precheck of every name.
  package var unlisted: String? = nil

  package static func nothingToDo(whenCreated action: String) -> Settlement {
    Settlement(action: action, consequence: .nothingToDo)
  }
  package static func nothingToFind(whenCreated action: String) -> Settlement {
    Settlement(action: action, consequence: .nothingToFind)
  }
  /// The precheck cannot find anything in, or named after, what `action` of the earlier step
  /// `step` created in this run (a DB subnet group in a new VPC).
  package static func nothingToFind(whenCreated action: String, inStep step: String) -> Settlement {
    Settlement(action: action, consequence: .nothingToFind, step: step)
  }
  /// The precheck cannot find `name` when the read `action` of this run did not list it.
  package static func nothingToFind(unlessListedBy action: String, name: String) -> Settlement {
    Settlement(action: action, consequence: .nothingToFind, unlisted: name)
  }
  /// There is nothing to do for `name` when the read `action` of this run did not list it (a
  /// secret to restore that is not scheduled for deletion).
  package static func nothingToDo(unlessListedBy action: String, name: String) -> Settlement {
    Settlement(action: action, consequence: .nothingToDo, unlisted: name)
  }

  /// Whether `answer`, the output of the listing read, leaves `name` out. A listed word names it
  /// when it is the name, or a path (a URL, an ARN) whose last part is the name.
  func leavesOut(of answer: String) -> Bool {
    guard let unlisted else { return false }
    return !answer.split(whereSeparator: \.isWhitespace).contains {
      $0 == unlisted || $0.hasSuffix("/" + unlisted)
    }
  }
}
