using System.Globalization;

namespace Gateway.LoadTool;

internal sealed record LoadOptions
{
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 1883;
    public int Publishers { get; init; } = 4;
    public int Subscribers { get; init; } = 1;
    public int Qos { get; init; } = 1;
    public int Size { get; init; } = 64;
    public int Messages { get; init; } = 100_000; // per publisher
    public int InFlight { get; init; } = 64;      // unacknowledged QoS 1 publishes per publisher
    public string Label { get; init; } = "broker";
    public TimeSpan Idle { get; init; } = TimeSpan.FromSeconds(5);
    public string? SubscribeHost { get; init; }   // subscribers on another broker (the cloud side of a bridge)
    public int SubscribePort { get; init; }
    public string SubscribePrefix { get; init; } = ""; // what the bridge puts in front of the topic
    public int Rate { get; init; }                 // messages/s over all publishers; 0 = as fast as acks allow

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        for (var i = 0; i < args.Length; i += 2)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(value, CultureInfo.InvariantCulture);
            options = args[i] switch
            {
                "--host" => options with { Host = value },
                "--port" => options with { Port = Int() },
                "--publishers" => options with { Publishers = Int() },
                "--subscribers" => options with { Subscribers = Int() },
                "--qos" => options with { Qos = Int() is 0 or 1 ? Int() : throw new ArgumentException("--qos must be 0 or 1") },
                "--size" => options with { Size = Math.Max(24, Int()) },
                "--messages" => options with { Messages = Int() },
                "--inflight" => options with { InFlight = Int() },
                "--label" => options with { Label = value },
                "--idle-seconds" => options with { Idle = TimeSpan.FromSeconds(Int()) },
                "--sub-host" => options with { SubscribeHost = value },
                "--sub-port" => options with { SubscribePort = Int() },
                "--sub-prefix" => options with { SubscribePrefix = value },
                "--rate" => options with { Rate = Int() },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }

        return options;
    }

    public const string Usage =
        "mqtt-load [--host 127.0.0.1] [--port 1883] [--publishers 4] [--subscribers 1] [--qos 0|1] [--size 64]\n" +
        "          [--messages 100000 (per publisher)] [--inflight 64] [--label name] [--idle-seconds 5]\n" +
        "          [--sub-host host] [--sub-port port] [--sub-prefix prefix/] [--rate messages-per-second]\n" +
        "With --rate the result also describes the longest delivery gap (an outage): when it ended,\n" +
        "how many messages sent before its end arrived after it, and at what rate they drained.";
}
