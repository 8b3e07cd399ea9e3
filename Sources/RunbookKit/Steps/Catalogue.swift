/// The steps of the guide, in guide order.
public enum Catalogue {
  /// Every step, in guide order.
  public static let steps: [any Step] = [
    NetworkStep(), SecurityGroupsStep(), RDSStep(), SecretsStep(), ECRStep(), ECSStep(),
    LambdaStep(),
    SQSStep(), VerifyStep(), UpdateStep(),
  ]

  /// What `destroy` runs last when every step goes: a scan for anything still tagged with the deployment.
  public static let leftoverScan: any Step = LeftoverScanStep()

  /// Every step name of the guide, in its order (a test checks each has its step).
  public static let guideOrder = [
    "network", "security", "rds", "secrets", "ecr", "ecs", "lambda", "sqs", "verify", "update",
  ]

  /// The step called `id`.
  public static func step(_ id: String) -> (any Step)? { steps.first { $0.id == id } }
}
