/// The steps of the guide, in guide order.
public enum Catalogue {
  /// Every step this version implements.
  public static let steps: [any Step] = [
    NetworkStep(), SecurityGroupsStep(), RDSStep(), SecretsStep(), ECRStep(), ECSStep(), LambdaStep(),
    SQSStep(),
  ]

  /// Every step name of the guide, implemented or not (the command line accepts only implemented ones).
  public static let guideOrder = [
    "network", "security", "rds", "secrets", "ecr", "ecs", "lambda", "sqs", "verify", "update",
  ]

  /// The implemented step called `id`.
  public static func step(_ id: String) -> (any Step)? { steps.first { $0.id == id } }
}
