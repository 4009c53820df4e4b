using System.Diagnostics;
using Gateway.Routing;
using Gateway.Storage;
using LiteDB;
using Microsoft.Extensions.Logging.Abstractions;

// Durable write rates on this disk, 256-byte bodies: raw LiteDB with a checkpoint per commit at
// 1, 100 and 1,000 inserts per commit, then the gateway's store with 1, 4 and 50 concurrent
// appenders (each waiting for its own commit). Prints one JSON line per measurement.
var directory = Directory.CreateTempSubdirectory("store-bench-").FullName;
try
{
    var body = new byte[256];
    foreach (var perCommit in new[] { 1, 100, 1000 })
    {
        var path = Path.Combine(directory, $"raw-{perCommit}.db");
        using var db = new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct });
        var log = db.GetCollection("log");
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
            db.Checkpoint();
        }

        Report(new() { ["what"] = "raw LiteDB, checkpoint per commit", ["inserts_per_commit"] = perCommit, ["inserts_per_s"] = Math.Round(total / Stopwatch.GetElapsedTime(started).TotalSeconds) });
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
}
finally
{
    Directory.Delete(directory, recursive: true);
}

static void Report(Dictionary<string, object> values) => Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(values));
