import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// The parameters of one deployment of the guide, read from `runbooks/*.json`.
///
/// Operators edit this data, never the steps' code.
package struct Deployment: Sendable, Hashable {
  /// Names the deployment in tags and in the checkpoint (`unisync`, `unisync-staging`).
  package var name: String
  package var region: String
  package var network: Network
  package var securityGroups: SecurityGroups
  package var rds: RDS
  package var secrets: Secrets
  package var ecr: ECR
  package var services: [Service]
  package var ecs: ECS
  package var lambda: Lambda
  package var sqs: SQS
  /// `host:port` images are pushed to instead of the ECR registry host (local emulator only).
  package var registry: String?
  /// What `verify` probes instead of `http://<ALB_DNS>/actuator/health`.
  package var healthCheckUrl: String?
  /// `s3://BUCKET/PREFIX` keeping the checkpoint, journal and lock (`--state` overrides it); nil: local.
  package var state: String?
  /// The tag for the images this run builds (`run --tag`); never read from the configuration file.
  /// Nil: the short git commit of the build context, else a UTC timestamp.
  package var imageTag: String?
  /// What this run was asked for beyond the image tag (never read from the configuration file).
  package var request = RunRequest()
  /// Bounds and intervals of verify, update and destroy.
  package var operations = Operations()
  /// The folder of the configuration file; relative paths in it are resolved against this.
  package var baseDirectory: String

  package struct Network: Sendable, Hashable {
    package var vpcName: String
    package var vpcCidr: String
    package var subnets: [Subnet]
    package var internetGatewayName: String
    package var elasticIpName: String
    package var natGatewayName: String
    /// The `id` of the public subnet that holds the NAT gateway.
    package var natSubnet: String
    package var natWaitTimeoutSeconds: Int
    package var publicRouteTableName: String
    package var privateRouteTableName: String
  }

  package struct Subnet: Sendable, Hashable {
    /// Short id (`public-2a`); the export is `SUBNET_PUBLIC_2A`.
    package var id: String
    package var name: String
    package var cidr: String
    package var zone: String
    package var isPublic: Bool

    package var export: String {
      "SUBNET_" + id.uppercased().replacingOccurrences(of: "-", with: "_")
    }
  }

  package struct SecurityGroup: Sendable, Hashable {
    package var name: String
    package var description: String
  }

  package struct SecurityGroups: Sendable, Hashable {
    package var alb: SecurityGroup
    package var albPorts: [Int]
    package var ecs: SecurityGroup
    package var ecsPortRange: ClosedRange<Int>
    package var rds: SecurityGroup
    package var rdsPort: Int
  }

  package struct RDS: Sendable, Hashable {
    package var subnetGroupName: String
    package var subnetGroupDescription: String
    package var instanceIdentifier: String
    package var instanceClass: String
    package var engine: String
    package var engineVersion: String
    package var masterUsername: String
    package var allocatedStorageGB: Int
    package var backupRetentionDays: Int
    package var multiAZ: Bool
    package var waitTimeoutSeconds: Int
    package var databases: [String]
    /// Guide 3.3: who creates the databases (and the services' own database users).
    package var setup = DatabaseSetup()
  }

  /// `rds.databaseSetup`: guide 3.3 done by a one-off Fargate task in the private subnets
  /// (`task`, the default), or by the operator from a host inside the VPC (`manual`; the ecs
  /// step then refuses to start until the operator has confirmed it).
  package struct DatabaseSetup: Sendable, Hashable {
    package enum Mode: String, Sendable, Hashable {
      case task
      case manual
    }
    static let defaultImage = "public.ecr.aws/docker/library/mysql:8.4"

    package var mode = Mode.task
    /// An image with the `mysql` client and `sh`.
    package var image = defaultImage
    /// How long the task may take, from `run-task` to STOPPED.
    package var timeoutSeconds = 900
    /// The secrets of the services' own database users are `<prefix><service>`
    /// (`unisync/db-user-service`); task mode only.
    package var userSecretPrefix = "unisync/db-"

    package init() {}
  }

  /// A secret whose value the operator supplies (the tool cannot invent it).
  package struct SuppliedSecret: Sendable, Hashable {
    package var name: String
    /// The environment variable of each field (`value` for a plain string; `userPoolId`, `clientId`).
    package var environment: [String: String]
    /// A file holding the value (a JSON object for structured secrets).
    package var file: String?
  }

  /// The secrets of guide 4. The guide's `unisync/rds-password` is not among them: RDS keeps the
  /// master password in a secret of its own (`--manage-master-user-password`, see ``RDSStep``).
  package struct Secrets: Sendable, Hashable {
    package var encryptionKeyName: String
    package var canvasToken: SuppliedSecret
    package var cognito: SuppliedSecret
    package var recoveryWindowDays: Int
  }

  package struct ECR: Sendable, Hashable {
    package var repositoryPrefix: String
    package var scanOnPush: Bool
  }

  package struct Service: Sendable, Hashable {
    package var name: String
    package var port: Int
    /// The docker build context, relative to the configuration file's folder.
    package var buildContext: String
    /// The database the service uses (nil for the gateway).
    package var database: String?
    /// Whether the ALB's target group forwards to it.
    package var loadBalanced: Bool
    /// Its ECS task definition (a JSON file beside the configuration, with `${NAME}` placeholders).
    package var taskDefinition: DocumentTemplate
    /// A one-off command (argv) run before a rollout with the new image, as a one-off task of the
    /// new task definition (``Migration``); `run update` rolls out nothing unless it exits 0.
    package var migration: [String]? = nil
  }

  package struct ECS: Sendable, Hashable {
    /// A task's CPU units and memory when the configuration gives none: Fargate's smallest size.
    static let defaultCPUUnits = 256
    static let defaultMemoryMiB = 512

    package var cluster: String
    /// Task definition families and log groups are `<prefix>-<service>` and `/ecs/<prefix>-<service>`.
    package var familyPrefix: String
    package var executionRole: String
    package var cpu: String
    package var memory: String
    package var desiredCount: Int
    package var loadBalancer: String
    package var targetGroup: String
    package var healthCheckPath: String
    /// The target group's health check (``TargetHealthCheck``).
    package var healthCheck: TargetHealthCheck
    package var deregistrationDelaySeconds: Int
    package var healthCheckGracePeriodSeconds: Int
    package var deploymentTimeoutSeconds: Int
    package var logRetentionDays: Int
    /// The role the services' containers run as (`--task-role-arn`), apart from the execution
    /// role ECS itself uses: code in the containers gets AWS access only through it.
    package var taskRole: String
    /// Managed policies attached to the task role (none by default).
    package var taskRolePolicies: [String]
  }

  package struct Lambda: Sendable, Hashable {
    package var functionName: String
    package var roleName: String
    package var source: String
    package var handler: String
    package var runtime: String
    package var timeoutSeconds: Int
    package var memoryMB: Int
    package var environment: [String: String]
  }

  package struct SQS: Sendable, Hashable {
    package var queues: [String]
    package var deadLetterQueue: String
    package var deadLetterSource: String
    package var maxReceiveCount: Int
  }
}
