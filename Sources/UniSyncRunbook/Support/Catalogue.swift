import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// A step of this runbook: its actions are made from a ``Deployment``.
package typealias GuideStep = Step<Deployment>

/// The steps of the guide, in guide order.
package enum Catalogue {
  /// Every step, in guide order.
  package static let steps: [any GuideStep] = [
    NetworkStep(), SecurityGroupsStep(), RDSStep(), SecretsStep(), ECRStep(), ECSStep(),
    LambdaStep(),
    SQSStep(), VerifyStep(), UpdateStep(),
  ]

  /// What `destroy` runs last when every step goes: a scan for anything still tagged with the deployment.
  package static let leftoverScan: any GuideStep = LeftoverScanStep()

  /// Every step name of the guide, in its order (a test checks each has its step).
  package static let guideOrder = [
    "network", "security", "rds", "secrets", "ecr", "ecs", "lambda", "sqs", "verify", "update",
  ]

  /// The step called `id`.
  package static func step(_ id: String) -> (any GuideStep)? { steps.first { $0.id == id } }
}
