namespace Gateway.Protocols.Mqtt; internal static class Placeholder { }
