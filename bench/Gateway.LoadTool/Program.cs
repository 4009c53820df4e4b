using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Gateway.LoadTool;

// N publishers and M subscribers over real sockets against any MQTT broker. Each payload carries
// publisher id, sequence number and send time, so every subscriber counts lost, duplicate and
// out-of-order messages and end-to-end latency. Prints one JSON line.
if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(LoadOptions.Usage);
    return 0;
}

LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(LoadOptions.Usage);
    return 2;
}

using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(10));
var run = Guid.NewGuid().ToString("N")[..8];
var expected = (long)options.Publishers * options.Messages;

var subscribers = new List<Subscriber>();
for (var i = 0; i < options.Subscribers; i++)
{
    var connection = await MqttConnection.ConnectAsync(options.SubscribeHost ?? options.Host, options.SubscribePort > 0 ? options.SubscribePort : options.Port, $"load-sub-{run}-{i}", cancel.Token);
    await connection.SubscribeAsync($"{options.SubscribePrefix}load/{run}/#", options.Qos, cancel.Token);
    subscribers.Add(new Subscriber(connection, options.Publishers, options.Messages, expected));
}

var publisherConnections = new List<MqttConnection>();
for (var i = 0; i < options.Publishers; i++)
{
    publisherConnections.Add(await MqttConnection.ConnectAsync(options.Host, options.Port, $"load-pub-{run}-{i}", cancel.Token));
}

var receiving = subscribers.Select(s => s.RunAsync(options.Qos, options.Idle, cancel.Token)).ToArray();
var started = Stopwatch.GetTimestamp();
var startedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
await Task.WhenAll(publisherConnections.Select((c, i) => PublishAsync(c, i, options, run, cancel.Token)));
var publishSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
Console.Error.WriteLine($"published {expected} in {publishSeconds:F1} s"); // scripts wait for this line
await Task.WhenAll(receiving);

long received = 0, lost = 0, duplicates = 0, outOfOrder = 0;
var lastReceive = started;
var latencies = new List<long>();
foreach (var subscriber in subscribers)
{
    received += subscriber.Received;
    lost += expected - subscriber.Unique;
    duplicates += subscriber.Duplicates;
    outOfOrder += subscriber.OutOfOrder;
    lastReceive = Math.Max(lastReceive, subscriber.LastReceive);
    latencies.AddRange(subscriber.Latencies);
}

latencies.Sort();
double Percentile(double p) => latencies.Count == 0 ? 0
    : latencies[(int)Math.Min(latencies.Count - 1, Math.Round(p * (latencies.Count - 1)))] * 1000.0 / Stopwatch.Frequency;
var deliverySeconds = (lastReceive - started) / (double)Stopwatch.Frequency;

var result = new Dictionary<string, object>
{
    ["broker"] = options.Label,
    ["publishers"] = options.Publishers,
    ["subscribers"] = options.Subscribers,
    ["qos"] = options.Qos,
    ["payload_bytes"] = options.Size,
    ["sent"] = expected,
    ["publish_rate"] = Math.Round(expected / publishSeconds),
    ["received"] = received,
    ["delivery_rate"] = deliverySeconds > 0 ? Math.Round(received / deliverySeconds) : 0,
    ["receive_span_rate"] = subscribers.Count > 0 && subscribers[0].LastReceive > subscribers[0].FirstReceive
        ? Math.Round(subscribers[0].Received / ((subscribers[0].LastReceive - subscribers[0].FirstReceive) / (double)Stopwatch.Frequency)) : 0,
    ["latency_p50_ms"] = Math.Round(Percentile(0.50), 3),
    ["latency_p99_ms"] = Math.Round(Percentile(0.99), 3),
    ["lost"] = lost,
    ["duplicates"] = duplicates,
    ["out_of_order"] = outOfOrder,
};
if (options.Rate > 0 && subscribers.Count > 0)
{
    // The longest silence at the first subscriber is the outage. Strict order means everything
    // sent before it ended and received after it is the backlog, delivered before live traffic.
    var (gapEnd, gapTicks, backlog, drainEnd) = subscribers[0].LongestGap();
    double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
    result["gap_ms"] = Math.Round(Ms(gapTicks));
    result["gap_end_unix_ms"] = startedUnixMs + (long)Ms(gapEnd - started);
    result["backlog"] = backlog;
    result["drain_ms"] = Math.Round(Ms(drainEnd - gapEnd));
    result["drain_rate"] = drainEnd > gapEnd ? Math.Round(backlog / (Ms(drainEnd - gapEnd) / 1000.0)) : 0;
}

Console.WriteLine(JsonSerializer.Serialize(result));
foreach (var connection in publisherConnections)
{
    await connection.DisposeAsync();
}

return 0;

static async Task PublishAsync(MqttConnection connection, int publisher, LoadOptions options, string run, CancellationToken cancellationToken)
{
    var topic = Encoding.UTF8.GetBytes($"load/{run}/{publisher}");
    var payload = new byte[options.Size];
    BinaryPrimitives.WriteInt32LittleEndian(payload, publisher);
    var window = new SemaphoreSlim(options.InFlight, options.InFlight);
    Task acks = Task.CompletedTask;
    if (options.Qos == 1)
    {
        acks = Task.Run(async () =>
        {
            for (var i = 0; i < options.Messages; i++)
            {
                var (type, _) = await connection.ReadPacketAsync(cancellationToken);
                if (type != 0x40)
                {
                    throw new InvalidOperationException($"expected PUBACK, got {type:X2}");
                }

                window.Release();
            }
        }, cancellationToken);
    }

    ushort packetId = 0;
    var perSecond = options.Rate / (double)options.Publishers;
    var start = Stopwatch.GetTimestamp();
    for (long seq = 0; seq < options.Messages; seq++)
    {
        if (perSecond > 0 && seq >= Stopwatch.GetElapsedTime(start).TotalSeconds * perSecond)
        {
            await connection.FlushAsync(cancellationToken);
            await Task.Delay(5, cancellationToken); // pacing for --rate, 5 ms slices
        }

        if (options.Qos == 1 && !window.Wait(0, CancellationToken.None))
        {
            await connection.FlushAsync(cancellationToken);
            await window.WaitAsync(cancellationToken);
        }

        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(4), seq);
        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(12), Stopwatch.GetTimestamp());
        packetId = packetId == ushort.MaxValue ? (ushort)1 : (ushort)(packetId + 1);
        connection.WritePublish(topic, payload, options.Qos, packetId);
        if (connection.Buffered > 32 * 1024)
        {
            await connection.FlushAsync(cancellationToken);
        }
    }

    await connection.FlushAsync(cancellationToken);
    await acks;
}

internal sealed class Subscriber(MqttConnection connection, int publishers, int messages, long expected)
{
    private readonly long[] _nextSeq = new long[publishers];
    private readonly System.Collections.BitArray[] _seen = [.. Enumerable.Range(0, publishers).Select(_ => new System.Collections.BitArray(messages))];

    public long Received { get; private set; }
    public long Unique { get; private set; }
    public long Duplicates { get; private set; }
    public long OutOfOrder { get; private set; }
    public long LastReceive { get; private set; }
    public long FirstReceive { get; private set; }
    public List<long> Latencies { get; } = new((int)Math.Min(expected, 10_000_000));
    private readonly List<(long Received, long Sent)> _timeline = new((int)Math.Min(expected, 10_000_000));

    public (long GapEnd, long Gap, long Backlog, long DrainEnd) LongestGap()
    {
        var at = 0;
        long gap = 0;
        for (var i = 1; i < _timeline.Count; i++)
        {
            var g = _timeline[i].Received - _timeline[i - 1].Received;
            if (g > gap)
            {
                (gap, at) = (g, i);
            }
        }

        if (at == 0)
        {
            return (0, 0, 0, 0);
        }

        var gapEnd = _timeline[at].Received;
        long backlog = 0, drainEnd = gapEnd;
        for (var i = at; i < _timeline.Count; i++)
        {
            if (_timeline[i].Sent < gapEnd)
            {
                backlog++;
                drainEnd = Math.Max(drainEnd, _timeline[i].Received);
            }
        }

        return (gapEnd, gap, backlog, drainEnd);
    }

    public async Task RunAsync(int qos, TimeSpan idle, CancellationToken cancellationToken)
    {
        connection.FlushBeforeWaiting = true;
        while (Unique < expected)
        {
            using var idleTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            idleTimeout.CancelAfter(idle);
            (byte Type, ReadOnlyMemory<byte> Body) packet;
            try
            {
                packet = await connection.ReadPacketAsync(idleTimeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return; // nothing more is coming: whatever is missing was lost
            }

            if ((packet.Type & 0xF0) != 0x30)
            {
                continue;
            }

            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            var (packetId, publisher, seq, sent) = Parse(packet.Type, packet.Body.Span);
            if (packetId > 0)
            {
                connection.WritePubAck(packetId);
                if (connection.Buffered > 4096)
                {
                    await connection.FlushAsync(cancellationToken);
                }
            }

            if (Received++ == 0)
            {
                FirstReceive = now;
            }

            LastReceive = now;
            Latencies.Add(now - sent);
            _timeline.Add((now, sent));
            if (_seen[publisher][(int)seq])
            {
                Duplicates++;
            }
            else
            {
                _seen[publisher][(int)seq] = true;
                Unique++;
            }

            if (seq < _nextSeq[publisher])
            {
                OutOfOrder++;
            }

            _nextSeq[publisher] = Math.Max(_nextSeq[publisher], seq + 1);
        }

        await connection.FlushAsync(cancellationToken);
    }

    private static (ushort PacketId, int Publisher, long Seq, long Sent) Parse(byte type, ReadOnlySpan<byte> body)
    {
        var offset = 2 + BinaryPrimitives.ReadUInt16BigEndian(body);
        ushort packetId = 0;
        if (((type >> 1) & 3) > 0)
        {
            packetId = BinaryPrimitives.ReadUInt16BigEndian(body[offset..]);
            offset += 2;
        }

        var payload = body[offset..];
        return (packetId, BinaryPrimitives.ReadInt32LittleEndian(payload), BinaryPrimitives.ReadInt64LittleEndian(payload[4..]), BinaryPrimitives.ReadInt64LittleEndian(payload[12..]));
    }
}
