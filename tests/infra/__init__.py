"""Tests of the CDK app (infra/aws): synthesised template, assets, least privilege, cdk-nag."""
