using System.Diagnostics;
using Gateway.Routing;
using Gateway.Storage;
using LiteDB;
using Microsoft.Extensions.Logging.Abstractions;

// Durable write rates on this disk, 256-byte bodies: raw LiteDB at 1, 100 and 1,000 inserts per
// commit, put on disk two ways (a checkpoint per commit; an fsync of LiteDB's log per commit, with
// a checkpoint every 4 MB of log, as the store does), then the gateway's store with 1, 4 and 50 concurrent
// appenders (each waiting for its own commit), then the store as a forwarding uplink uses it,
// with the process CPU per message. Prints one JSON line per measurement; `store-bench forward`
// runs only the last one.
var directory = Directory.CreateTempSubdirectory("store-bench-").FullName;
try
{
    var body = new byte[256];
    if (args is ["forward"])
    {
        await ForwardAsync(Path.Combine(directory, "forward"), body);
        return;
    }

    foreach (var perCommit in new[] { 1, 100, 1000 })
    {
        foreach (var logSync in new[] { false, true })
        {
            var path = Path.Combine(directory, $"raw-{perCommit}-{logSync}.db");
            using var db = new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct });
            var log = db.GetCollection("log");
            using var logFile = logSync ? new FileStream(Path.Combine(directory, $"raw-{perCommit}-{logSync}-log.db"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 0) : null;
            db.CheckpointSize = logSync ? 0 : db.CheckpointSize;
            var total = perCommit == 1 ? 2000 : 50_000;
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; i < total; i += perCommit)
            {
                db.BeginTrans();
                for (var j = 0; j < perCommit; j++)
                {
                    log.Insert(new BsonDocument { ["_id"] = i + j, ["b"] = body });
                }

                db.Commit();
                if (logFile is null)
                {
                    db.Checkpoint();
                }
                else
                {
                    logFile.Flush(flushToDisk: true);
                    if (logFile.Length >= 4 * 1024 * 1024)
                    {
                        db.Checkpoint();
                        logFile.Flush(flushToDisk: true);
                    }
                }
            }

            Report(new() { ["what"] = logSync ? "raw LiteDB, log fsynced per commit" : "raw LiteDB, checkpoint per commit", ["inserts_per_commit"] = perCommit, ["inserts_per_s"] = Math.Round(total / Stopwatch.GetElapsedTime(started).TotalSeconds) });
        }
    }

    foreach (var appenders in new[] { 1, 4, 50 })
    {
        var storeDirectory = Path.Combine(directory, $"store-{appenders}");
        await using var store = LiteDbMessageStore.Open(new StoreOptions { DataDirectory = storeDirectory }, NullLogger.Instance);
        var perAppender = appenders == 1 ? 2000 : 100_000 / appenders;
        var message = new GatewayMessage("amq.topic", "sensors.bench", body, MessageProperties.PersistentEmpty);
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, appenders).Select(async a =>
        {
            for (var i = 0; i < perAppender; i++)
            {
                await store.AppendAsync($"uplink.{a % 4}", message, CancellationToken.None);
            }
        }));
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        Report(new()
        {
            ["what"] = "gateway store, durable",
            ["concurrent_appenders"] = appenders,
            ["appends_per_s"] = Math.Round(appenders * perAppender / seconds),
            ["appends_per_transaction"] = Math.Round((double)store.Operations / store.Groups, 1),
        });
    }

    await ForwardAsync(Path.Combine(directory, "forward"), body);
}
finally
{
    Directory.Delete(directory, recursive: true);
}

// Appends from 4 publishers (64 unacknowledged each, as bench/uplink.sh's load) while the
// "uplink" removes the committed messages in order, 512 behind: appends and removals share the
// group commits, as in a forwarding gateway.
static async Task ForwardAsync(string storeDirectory, byte[] body)
{
    const int Appenders = 4, PerAppender = 250_000, InFlight = 64, Lag = 512;
    await using var store = LiteDbMessageStore.Open(new StoreOptions { DataDirectory = storeDirectory }, NullLogger.Instance);
    var message = new GatewayMessage("amq.topic", "sensors.bench", body, MessageProperties.PersistentEmpty);
    long committed = 0; // the highest offset acknowledged (groups commit in order)
    var done = false;
    var consumer = Task.Run(async () =>
    {
        long removed = 0;
        while (!Volatile.Read(ref done))
        {
            var upTo = Interlocked.Read(ref committed) - Lag;
            if (upTo > removed)
            {
                store.RemoveRange("uplink", removed + 1, upTo);
                removed = upTo;
            }

            await Task.Delay(1);
        }
    });
    void Committed(long offset)
    {
        long seen;
        while (offset > (seen = Interlocked.Read(ref committed)) && Interlocked.CompareExchange(ref committed, offset, seen) != seen)
        {
        }
    }

    var cpu = Environment.CpuUsage.TotalTime;
    var started = Stopwatch.GetTimestamp();
    await Task.WhenAll(Enumerable.Range(0, Appenders).Select(async _ =>
    {
        var inFlight = new Queue<Task<long>>(InFlight);
        for (var i = 0; i < PerAppender; i++)
        {
            if (inFlight.Count == InFlight)
            {
                Committed(await inFlight.Dequeue());
            }

            inFlight.Enqueue(store.AppendAsync("uplink", message, CancellationToken.None).AsTask());
        }

        while (inFlight.Count > 0)
        {
            Committed(await inFlight.Dequeue());
        }
    }));
    var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
    var cpuUs = (Environment.CpuUsage.TotalTime - cpu).TotalMicroseconds / (Appenders * PerAppender);
    Volatile.Write(ref done, true);
    await consumer;
    Report(new()
    {
        ["what"] = "gateway store, forwarding (appends and in-order removals)",
        ["concurrent_appenders"] = Appenders,
        ["appends_per_s"] = Math.Round(Appenders * PerAppender / seconds),
        ["cpu_us_per_message"] = Math.Round(cpuUs, 1),
        ["appends_per_transaction"] = Math.Round((double)store.Operations / store.Groups, 1),
        ["file_mb"] = Math.Round(new FileInfo(Path.Combine(storeDirectory, "gateway.db")).Length / 1048576.0, 1),
    });
}

static void Report(Dictionary<string, object> values) => Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(values));
