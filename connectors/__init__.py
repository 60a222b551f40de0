"""Source connectors. Each module implements `mentionwatch.connector.Connector` and is
registered under the `mentionwatch.connectors` entry-point group."""
