import RunbookProcess

extension Command {
  /// `aws ecs OPERATION --cluster <CLUSTER_ARN> --service SERVICE ...`: an operation on one service
  /// of the deployment's cluster (`update-service`, `delete-service`).
  static func ecsService(_ operation: String, _ service: String, _ more: [Argument]) -> Command {
    .aws(
      ["ecs", .text(operation), "--cluster", .ref("CLUSTER_ARN"), "--service", .text(service)]
        + more)
  }

  /// `describe-services` of one service of the cluster, `fields` of its ACTIVE entry as text: a
  /// deleted service stays listed, INACTIVE, for a while, and does not count.
  static func activeECSService(_ service: String, fields: String) -> Command {
    .aws(
      "ecs", "describe-services", "--cluster", .ref("CLUSTER_ARN"), "--services", .text(service),
      "--query", "services[?status=='ACTIVE'].\(fields)", "--output", "text")
  }
}
