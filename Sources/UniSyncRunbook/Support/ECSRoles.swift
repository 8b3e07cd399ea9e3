import RunbookEngine

extension ECSStep {
  /// The task execution role: pull images, write logs, read the secrets.
  static func executionRole(_ deployment: Deployment) -> RoleSpec {
    RoleSpec(
      key: "execution-role", name: deployment.ecs.executionRole,
      principal: "ecs-tasks.amazonaws.com",
      export: "EXECUTION_ROLE_ARN",
      managedPolicies: ["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"],
      inlinePolicyName: "SecretsManagerAccess",
      inlinePolicy: policyDocument([
        (
          ["secretsmanager:GetSecretValue"],
          deployment.secretARNPatterns() + [.ref("RDS_SECRET_ARN")]
        )
      ]))
  }

  /// The role the services' containers run as (`taskRoleArn` in the task definitions): trusted by
  /// ECS tasks, with the configured managed policies (none by default) and no inline policy, so
  /// code in the containers gets AWS access without touching the execution role.
  /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
  static func taskRole(_ deployment: Deployment) -> RoleSpec {
    RoleSpec(
      key: "task-role", name: deployment.ecs.taskRole, principal: "ecs-tasks.amazonaws.com",
      export: "TASK_ROLE_ARN", managedPolicies: deployment.ecs.taskRolePolicies,
      inlinePolicyName: nil, inlinePolicy: nil)
  }
}
