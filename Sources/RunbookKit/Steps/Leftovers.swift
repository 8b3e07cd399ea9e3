import Foundation

/// The end of `destroy`: a scan for anything still tagged with this deployment.
struct LeftoverScanStep: Step {
  let id = "leftovers"
  let section = "-"
  let title = "Anything left?"
  var runsByDefault: Bool { false }

  func actions(for deployment: Deployment) -> [Action] { [] }
}
