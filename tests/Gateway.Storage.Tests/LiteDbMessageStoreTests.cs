using System.Text;
using Gateway.Routing;
using Gateway.TestKit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Storage.Tests;

/// <summary>The store on a real LiteDB file in a per-test directory.</summary>
[Trait("Category", "Unit")]
public sealed class LiteDbMessageStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gateway-store-").FullName;
    private readonly InMemoryLoggerProvider _logs = new();
    private readonly ILoggerFactory _loggerFactory;

    public LiteDbMessageStoreTests() => _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs));

    private string DatabasePath => Path.Combine(_directory, "gateway.db");

    public void Dispose()
    {
        _loggerFactory.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private LiteDbMessageStore Open(StoreDurability durability = StoreDurability.Durable) =>
        LiteDbMessageStore.Open(new StoreOptions { DataDirectory = _directory, Durability = durability }, _loggerFactory.CreateLogger("store"));

    private static GatewayMessage Message(string body, MessageProperties? properties = null) =>
        new("amq.topic", "sensors.boiler", Encoding.UTF8.GetBytes(body), properties, new MessageOrigin("mqtt", "sensor-1", "alice"));

    private static string Text(StoredMessage stored) => Encoding.UTF8.GetString(stored.Message.Body.Span);

    [Fact]
    public async Task Queues_are_ordered_logs_trimmed_by_commit()
    {
        await using var store = Open();
        for (var i = 1; i <= 5; i++)
        {
            Assert.Equal(i, await store.AppendAsync("uplink.cloud", Message($"c{i}"), default));
        }

        await store.AppendAsync("uplink.backup", Message("b1"), default);

        var batch = await store.ReadBatchAsync("uplink.cloud", 0, 10, default);
        Assert.Equal(["c1", "c2", "c3", "c4", "c5"], batch.Select(Text));
        Assert.Equal([1L, 2, 3, 4, 5], batch.Select(m => m.Offset));

        await store.CommitAsync("uplink.cloud", 3, default);

        Assert.Equal(["c4", "c5"], (await store.ReadBatchAsync("uplink.cloud", 0, 10, default)).Select(Text));
        Assert.Equal(["c5"], (await store.ReadBatchAsync("uplink.cloud", 5, 10, default)).Select(Text));
        Assert.Equal(["c4"], (await store.ReadBatchAsync("uplink.cloud", 0, 1, default)).Select(Text));
        Assert.Equal(["b1"], (await store.ReadBatchAsync("uplink.backup", 0, 10, default)).Select(Text));
    }

    [Fact]
    public async Task Messages_and_their_properties_survive_a_restart_and_offsets_continue()
    {
        var properties = new MessageProperties
        {
            Persistent = true,
            ContentType = "application/json",
            CorrelationId = new byte[] { 1, 2, 255 },
            ReplyTo = "replies.7",
            Expiration = TimeSpan.FromSeconds(90),
            MessageId = "m-1",
            Timestamp = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123),
            Headers = new Dictionary<string, object?> { ["site"] = "north", ["attempt"] = 3, ["raw"] = new byte[] { 9 } },
        };
        await using (var store = Open())
        {
            await store.AppendAsync("q", Message("first", properties), default);
            await store.AppendAsync("q", Message("second"), default);
            await store.CommitAsync("q", 1, default);
        }

        await using (var reopened = Open())
        {
            var stored = Assert.Single(await reopened.ReadBatchAsync("q", 0, 10, default));
            Assert.Equal("second", Text(stored));
            Assert.Equal(3, await reopened.AppendAsync("q", Message("third", properties), default));

            var third = (await reopened.ReadBatchAsync("q", 3, 1, default)).Single().Message;
            Assert.Equal("amq.topic", third.Exchange);
            Assert.Equal("sensors.boiler", third.RoutingKey);
            Assert.Equal(new MessageOrigin("mqtt", "sensor-1", "alice"), third.Origin);
            Assert.True(third.Persistent);
            Assert.Equal("application/json", third.Properties.ContentType);
            Assert.Equal(new byte[] { 1, 2, 255 }, third.Properties.CorrelationId.ToArray());
            Assert.Equal("replies.7", third.Properties.ReplyTo);
            Assert.Equal(TimeSpan.FromSeconds(90), third.Properties.Expiration);
            Assert.Equal("m-1", third.Properties.MessageId);
            Assert.Equal(properties.Timestamp, third.Properties.Timestamp);
            Assert.Equal("north", third.Properties.Headers!["site"]);
            Assert.Equal(3, third.Properties.Headers["attempt"]);
            Assert.Equal(new byte[] { 9 }, (byte[])third.Properties.Headers["raw"]!);
        }
    }

    [Theory]
    [InlineData(StoreDurability.Durable)]
    [InlineData(StoreDurability.Fast)]
    public async Task Concurrent_appends_are_all_acknowledged_and_share_group_commits(StoreDurability durability)
    {
        await using var store = Open(durability);
        using var gate = new ManualResetEventSlim();
        store.TestGate = gate; // the writer waits while all 2000 appends queue up

        var appends = Enumerable.Range(0, 2000).Select(i => store.AppendAsync("q", Message($"m{i}"), default).AsTask()).ToList();
        gate.Set();
        var offsets = await Task.WhenAll(appends);

        Assert.Equal(Enumerable.Range(1, 2000).Select(i => (long)i), offsets); // in the order they were submitted
        Assert.Equal(2000, await store.CountAsync("q", default));
        Assert.Equal(2, store.Groups); // all 2000 appends in one transaction, then the count in another
    }

    [Fact]
    public async Task A_file_of_garbage_is_moved_aside_and_the_store_starts_empty()
    {
        await File.WriteAllBytesAsync(DatabasePath, Enumerable.Range(0, 64 * 1024).Select(i => (byte)(i * 7919 % 251)).ToArray());

        await using var store = Open();

        Assert.Equal(1, await store.AppendAsync("q", Message("fresh"), default));
        Assert.Single(Directory.GetFiles(_directory, "gateway.db.damaged-*"));
        Assert.Contains(_logs.Entries, e => e.EventId.Id == 4001 && e.Level == LogLevel.Critical);
    }

    [Fact]
    public async Task A_truncated_file_is_moved_aside_and_what_can_be_read_is_kept()
    {
        await using (var store = Open())
        {
            await Task.WhenAll(Enumerable.Range(0, 3000).Select(i => store.AppendAsync("q", Message(new string('x', 200) + i), default).AsTask()));
        }

        var length = new FileInfo(DatabasePath).Length;
        await using (var file = new FileStream(DatabasePath, FileMode.Open))
        {
            file.SetLength(length / 2);
        }

        await using var reopened = Open();

        var remaining = await reopened.CountAsync("q", default);
        Assert.InRange(remaining, 0, 2999);
        var next = await reopened.AppendAsync("q", Message("after"), default);
        Assert.True(next > 0);
        Assert.Contains(_logs.Entries, e => e.EventId.Id == 4001);
    }

    // The gateway stops (a power cut, a kill) in the middle of recovering a damaged file: the next
    // start redoes or finishes the recovery, and keeps every message a recovery run to the end
    // keeps. Stopped during or after the copy: the damaged file is still the store, so it is copied again.
    // Stopped once the copy was complete: it replaces the damaged file, which may already have been
    // moved aside.
    [Theory]
    [InlineData("Copying", false)]
    [InlineData("Copied", false)]
    [InlineData("Completed", false)]
    [InlineData("Completed", true)]
    public async Task A_recovery_cut_short_is_finished_at_the_next_start_and_keeps_what_it_could_read(string stoppedAfter, bool damagedFileMovedAside)
    {
        var stoppedAt = Enum.Parse<StoreRecovery.RecoveryStep>(stoppedAfter);
        await using (var store = Open())
        {
            await Task.WhenAll(Enumerable.Range(0, 3000).Select(i => store.AppendAsync("q", Message(new string('x', 200) + i), default).AsTask()));
        }

        await using (var file = new FileStream(DatabasePath, FileMode.Open))
        {
            file.SetLength(file.Length / 2);
        }

        var reference = Directory.CreateTempSubdirectory("gateway-store-").FullName;
        try
        {
            File.Copy(DatabasePath, Path.Combine(reference, "gateway.db"));
            IReadOnlyList<StoredMessage> expected;
            await using (var recoveredWhole = LiteDbMessageStore.Open(new StoreOptions { DataDirectory = reference }, _loggerFactory.CreateLogger("reference")))
            {
                expected = await recoveredWhole.ReadBatchAsync("q", 0, 3000, default);
            }

            Assert.NotEmpty(expected);
            void StopAt(StoreRecovery.RecoveryStep step)
            {
                if (step == stoppedAt)
                {
                    throw new OperationCanceledException("stopped");
                }
            }

            Assert.Throws<OperationCanceledException>(() => LiteDbMessageStore.Open(new StoreOptions { DataDirectory = _directory, RecoveryStepReached = StopAt }, _loggerFactory.CreateLogger("store")));
            if (damagedFileMovedAside)
            {
                File.Move(DatabasePath, DatabasePath + ".damaged-before-the-stop");
            }

            _logs.Entries.Clear();
            await using var reopened = Open();

            var read = await reopened.ReadBatchAsync("q", 0, 3000, default);
            Assert.Equal(expected.Select(Text), read.Select(Text));
            Assert.Equal(expected.Select(m => m.Offset), read.Select(m => m.Offset));
            Assert.Single(Directory.GetFiles(_directory, "gateway.db.damaged-*"));
            Assert.Empty(Directory.GetFiles(_directory, "gateway.recover*"));
            Assert.Contains(_logs.Entries, e => e.EventId.Id == (stoppedAt == StoreRecovery.RecoveryStep.Completed ? 4006 : 4001) && e.Level == LogLevel.Critical);
            Assert.True(await reopened.AppendAsync("q", Message("after"), default) > expected[^1].Offset);
        }
        finally
        {
            Directory.Delete(reference, recursive: true);
        }
    }

    [Fact]
    public async Task Messages_consumed_out_of_order_stay_consumed_across_a_restart()
    {
        await using (var store = Open())
        {
            using var gate = new ManualResetEventSlim();
            store.TestGate = gate; // 3,000 appends in one group: several segments
            var appends = Enumerable.Range(1, 3000).Select(i => store.AppendAsync("q", Message(new string('x', i % 300) + i), default).AsTask()).ToList();
            gate.Set();
            await Task.WhenAll(appends);

            for (var offset = 2L; offset <= 3000; offset += 3)
            {
                store.Remove("q", offset); // every third, from offset 2
            }

            store.RemoveRange("q", 1000, 1999);
            Assert.Equal(Expected().Count, await store.CountAsync("q", default));
        }

        static List<int> Expected() => Enumerable.Range(1, 3000).Where(i => i % 3 != 2 && (i < 1000 || i > 1999)).ToList();
        await using var reopened = Open();
        var expected = Expected();
        var info = reopened.OpenQueue("q");
        Assert.Equal(expected.Count, info.Count);
        Assert.Equal(expected.Sum(i => (long)Encoding.UTF8.GetByteCount(new string('x', i % 300) + i)), info.Bytes);
        Assert.Equal(3000, info.LastOffset);

        var read = new List<StoredMessage>();
        for (var from = 0L; ;)
        {
            var batch = await reopened.ReadBatchAsync("q", from, 500, default);
            if (batch.Count == 0)
            {
                break;
            }

            read.AddRange(batch);
            from = batch[^1].Offset + 1;
        }

        Assert.Equal(expected.Select(i => (long)i), read.Select(m => m.Offset));
        Assert.Equal(expected.Select(i => new string('x', i % 300) + i), read.Select(Text));
        Assert.Equal(3001, await reopened.AppendAsync("q", Message("next"), default));
    }

    // Lazy removals are committed to LiteDB's log, which survives a kill but is not fsynced with
    // them; a consumer that must bound its redeliveries across a power cut syncs them.
    [Fact]
    public async Task Consumed_messages_leave_the_file_within_the_removal_delay_and_survive_a_power_cut_once_synced()
    {
        var time = new FakeTimeProvider();
        await using var store = LiteDbMessageStore.Open(new StoreOptions { DataDirectory = _directory, TimeProvider = time }, _loggerFactory.CreateLogger("store"));
        for (var i = 1; i <= 10; i++)
        {
            await store.AppendAsync("q", Message($"m{i}"), default);
        }

        Assert.Equal(10, await MessagesAfterCrashAsync(store, powerCut: true)); // acknowledged: on disk
        store.RemoveRange("q", 1, 4); // the cloud confirmed 1..4
        Assert.Equal(6, await store.CountAsync("q", default));
        Assert.Equal(10, await MessagesAfterCrashAsync(store)); // not written yet: a crash now sends 1..4 again

        var written = store.Groups;
        time.Advance(LiteDbMessageStore.RemovalDelay); // nothing else happens: the delay alone writes them
        Assert.True(SpinWait.SpinUntil(() => store.Groups > written, TimeSpan.FromSeconds(30)), "no group was written after the delay");
        Assert.Equal(6, await MessagesAfterCrashAsync(store));
        Assert.Equal(10, await MessagesAfterCrashAsync(store, powerCut: true)); // in the log, not fsynced

        store.RemoveRange("q", 5, 6);
        await store.SyncRemovalsAsync(default);
        Assert.Equal(4, await MessagesAfterCrashAsync(store, powerCut: true));
        Assert.Equal(["m7", "m8"], (await store.ReadBatchAsync("q", 0, 2, default)).Select(Text));
    }

    // A power cut while a group was being written: its confirming last page reached the disk, an
    // earlier page did not (reads as zeros). Nobody was answered for that group, so it is dropped
    // whole; every group before it is kept and the store is not treated as damaged.
    [Fact]
    public async Task A_group_half_written_at_a_power_cut_is_dropped_and_the_ones_before_it_kept()
    {
        var image = Directory.CreateTempSubdirectory("gateway-torn-").FullName;
        try
        {
            await using (var store = Open())
            {
                for (var i = 1; i <= 10; i++)
                {
                    await store.AppendAsync("q", Message($"m{i}"), default);
                }

                var before = store.SyncedLogLength;
                using var gate = new ManualResetEventSlim();
                store.TestGate = gate; // 50 appends of 1 KB in one group: a transaction of several pages
                var appends = Enumerable.Range(11, 50).Select(i => store.AppendAsync("q", Message(new string('x', 1000) + i), default).AsTask()).ToList();
                gate.Set();
                await Task.WhenAll(appends);
                var after = store.SyncedLogLength;
                Assert.True(after - before >= 3 * 8192, $"the group took {after - before} bytes of log");

                File.Copy(DatabasePath, Path.Combine(image, "gateway.db"));
                var log = File.ReadAllBytes(Path.Combine(_directory, "gateway-log.db")).AsSpan(0, (int)after).ToArray();
                Array.Clear(log, (int)before, 8192); // the group's first page never reached the disk
                File.WriteAllBytes(Path.Combine(image, "gateway-log.db"), log);
            }

            await using var reopened = LiteDbMessageStore.Open(new StoreOptions { DataDirectory = image }, _loggerFactory.CreateLogger("image"));
            Assert.Equal(10, reopened.MessageCount);
            Assert.Equal(Enumerable.Range(1, 10).Select(i => $"m{i}"), (await reopened.ReadBatchAsync("q", 0, 100, default)).Select(Text));
            Assert.Equal(11, await reopened.AppendAsync("q", Message("next"), default));
            Assert.Contains(_logs.Entries, e => e.EventId.Id == 4005);
            Assert.DoesNotContain(_logs.Entries, e => e.EventId.Id == 4001);
        }
        finally
        {
            Directory.Delete(image, recursive: true);
        }
    }

    // A power cut in the middle of a checkpoint: the data file holds some of the pages it was
    // copying (the first half here) and not the rest; the log, fsynced before the checkpoint
    // began, is whole and not yet emptied. The next start copies it again.
    [Fact]
    public async Task A_power_cut_during_a_checkpoint_loses_nothing()
    {
        var image = Directory.CreateTempSubdirectory("gateway-checkpoint-").FullName;
        try
        {
            byte[] dataBefore, logBefore;
            var expected = Enumerable.Range(1, 2000).Select(i => $"m{i}-" + new string('x', i % 500)).ToList();
            await using (var store = Open())
            {
                for (var i = 0; i < expected.Count; i += 100)
                {
                    await Task.WhenAll(expected.Skip(i).Take(100).Select(body => store.AppendAsync("q", Message(body), default).AsTask()));
                }

                dataBefore = File.ReadAllBytes(DatabasePath);
                logBefore = File.ReadAllBytes(Path.Combine(_directory, "gateway-log.db")).AsSpan(0, (int)store.SyncedLogLength).ToArray();
                Assert.True(logBefore.Length > 16 * 8192, $"the log holds {logBefore.Length} bytes");
            } // closing checkpoints the log into the data file

            var dataAfter = File.ReadAllBytes(DatabasePath);
            Assert.True(dataAfter.Length > dataBefore.Length + (8 * 8192), "the checkpoint grew the data file");
            var half = dataAfter.Length / 8192 / 2 * 8192;
            var torn = dataAfter.AsSpan(0, half).ToArray(); // the file's second half not written yet
            if (dataBefore.Length > half)
            {
                torn = [.. torn, .. dataBefore.AsSpan(half)];
            }
            File.WriteAllBytes(Path.Combine(image, "gateway.db"), torn);
            File.WriteAllBytes(Path.Combine(image, "gateway-log.db"), logBefore);

            await using var reopened = LiteDbMessageStore.Open(new StoreOptions { DataDirectory = image }, _loggerFactory.CreateLogger("image"));
            Assert.Equal(expected.Count, reopened.MessageCount);
            Assert.Equal(expected, (await reopened.ReadBatchAsync("q", 0, 5000, default)).Select(Text));
            Assert.DoesNotContain(_logs.Entries, e => e.EventId.Id is 4001 or 4005);
        }
        finally
        {
            Directory.Delete(image, recursive: true);
        }
    }

    // What a store opened from the files as they are now would hold: the process killed here,
    // or the power cut (the data file is fsynced by every checkpoint; of its log only what was
    // fsynced is left).
    private async Task<long> MessagesAfterCrashAsync(LiteDbMessageStore store, bool powerCut = false)
    {
        var image = Directory.CreateTempSubdirectory("gateway-crash-").FullName;
        try
        {
            File.Copy(DatabasePath, Path.Combine(image, "gateway.db"));
            var log = File.ReadAllBytes(Path.Combine(_directory, "gateway-log.db"));
            File.WriteAllBytes(Path.Combine(image, "gateway-log.db"), powerCut ? log.AsSpan(0, (int)store.SyncedLogLength).ToArray() : log);

            await using var crashed = LiteDbMessageStore.Open(new StoreOptions { DataDirectory = image }, _loggerFactory.CreateLogger("image"));
            return crashed.MessageCount;
        }
        finally
        {
            Directory.Delete(image, recursive: true);
        }
    }

    [Fact]
    public async Task Messages_appended_and_consumed_in_one_group_leave_nothing_behind()
    {
        await using (var store = Open())
        {
            using var gate = new ManualResetEventSlim();
            store.TestGate = gate;
            var appends = Enumerable.Range(1, 100).Select(i => store.AppendAsync("q", Message($"m{i}"), default).AsTask()).ToList();
            store.RemoveRange("q", 1, 100); // consumed before its group was written
            gate.Set();
            await Task.WhenAll(appends);
            Assert.Equal(0, await store.CountAsync("q", default));
        }

        await using var reopened = Open();
        Assert.Equal(0, reopened.MessageCount);
        Assert.Empty(await reopened.ReadBatchAsync("q", 0, 10, default));
    }

    [Fact]
    public async Task Messages_stored_one_document_each_are_moved_into_segments_at_open()
    {
        using (var database = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = DatabasePath, Connection = LiteDB.ConnectionType.Direct }))
        {
            var log = database.GetCollection(MessageDocument.Collection);
            for (var i = 1; i <= 5000; i++)
            {
                if (i % 10 != 0) // the format kept consumed messages out by deleting them
                {
                    log.Insert(MessageDocument.ToDocument(i % 2 == 0 ? "even" : "odd", i, Message($"m{i}", new MessageProperties { MessageId = $"id{i}" }), TimeSpan.FromSeconds(i)));
                }
            }
        }

        await using (var store = Open())
        {
            Assert.Equal(4500, store.MessageCount);
            var odd = await store.ReadBatchAsync("odd", 0, 5000, default);
            Assert.Equal(Enumerable.Range(1, 5000).Where(i => i % 2 == 1).Select(i => $"m{i}"), odd.Select(Text));
            Assert.Equal("id4999", odd[^1].Message.Properties.MessageId);
            Assert.Equal(TimeSpan.FromSeconds(4999), odd[^1].EnqueuedAt);
            var even = await store.ReadBatchAsync("even", 0, 5000, default);
            Assert.Equal(Enumerable.Range(1, 5000).Where(i => i % 2 == 0 && i % 10 != 0).Select(i => (long)i), even.Select(m => m.Offset));
            Assert.Equal(5000, await store.AppendAsync("odd", Message("new"), default)); // after odd's last, 4999
            Assert.Contains(_logs.Entries, e => e.EventId.Id == 4004);
        }

        await using var reopened = Open();
        Assert.Equal(4501, reopened.MessageCount);
    }

    [Fact]
    public async Task Segments_whose_records_are_lost_are_dropped_and_the_rest_kept()
    {
        await using (var store = Open())
        {
            using var gate = new ManualResetEventSlim();
            store.TestGate = gate;
            var appends = Enumerable.Range(1, 3000).Select(i => store.AppendAsync("q", Message(new string('y', 100) + i), default).AsTask()).ToList();
            gate.Set();
            await Task.WhenAll(appends);
        }

        using (var database = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = DatabasePath, Connection = LiteDB.ConnectionType.Direct }))
        {
            var records = database.GetCollection("records");
            Assert.True(records.Count() > 2);
            records.Delete(records.Min("_id")); // the oldest segment's records, as damage would
        }

        await using var reopened = Open();

        var remaining = await reopened.CountAsync("q", default);
        Assert.InRange(remaining, 1, 2999);
        var read = await reopened.ReadBatchAsync("q", 0, 3000, default);
        Assert.Equal(Enumerable.Range(3001 - (int)remaining, (int)remaining).Select(i => (long)i), read.Select(m => m.Offset));
        Assert.Contains(_logs.Entries, e => e.EventId.Id == 4001 && e.Message.Contains($"{3000 - remaining} could not be read", StringComparison.Ordinal));
    }

    // A forwarding queue: each group appends, the cloud confirms all but the newest. Consumed
    // segments leave their documents to be overwritten by new ones, so the file holds no more
    // segment documents than were ever live at once; what comes back after a restart is
    // exactly what was not consumed, in order, and offsets go on.
    [Fact]
    public async Task A_forwarding_queue_reuses_consumed_segments_and_a_restart_returns_exactly_what_is_left()
    {
        long last = 0;
        await using (var store = Open())
        {
            for (var round = 0; round < 150; round++)
            {
                using var gate = new ManualResetEventSlim();
                store.TestGate = gate; // one group of 40
                var appends = Enumerable.Range(0, 40).Select(i => store.AppendAsync("q", Message($"m{last + i + 1}"), default).AsTask()).ToList();
                gate.Set();
                await Task.WhenAll(appends);
                last += 40;
                store.RemoveRange("q", 1, last - 30); // the newest 30 wait for the cloud
                await store.SyncRemovalsAsync(default);
            }
        }

        using (var database = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = DatabasePath, Connection = LiteDB.ConnectionType.Direct, ReadOnly = true }))
        {
            // 150 groups of 40 filled dozens of segments; the documents of at most 4 are left.
            Assert.InRange(database.GetCollection("segments").Count(), 2, 4);
            Assert.InRange(database.GetCollection("records").Count(), 2, 4);
        }

        await using var reopened = Open();
        Assert.Equal(30, reopened.MessageCount);
        var read = await reopened.ReadBatchAsync("q", 0, 100, default);
        Assert.Equal(Enumerable.Range((int)last - 29, 30).Select(i => $"m{i}"), read.Select(Text));
        Assert.Equal(last + 1, await reopened.AppendAsync("q", Message("next"), default));
        reopened.RemoveRange("q", 1, last - 10);
        Assert.Equal(Enumerable.Range((int)last - 9, 10).Select(i => $"m{i}").Append("next"), (await reopened.ReadBatchAsync("q", 0, 100, default)).Select(Text));
    }

    // A consumed segment's documents wait to be reused with its records still in them: recovering
    // a damaged file must not bring those consumed messages back.
    [Fact]
    public async Task Recovering_a_damaged_file_does_not_bring_back_consumed_messages()
    {
        await using (var store = Open())
        {
            using var gate = new ManualResetEventSlim();
            store.TestGate = gate; // one group: segments of up to 1,024 records
            var appends = Enumerable.Range(1, 3000).Select(i => store.AppendAsync("q", Message($"m{i}"), default).AsTask()).ToList();
            gate.Set();
            await Task.WhenAll(appends);
            store.RemoveRange("q", 1, 2048); // the first two segments, whole
            await store.SyncRemovalsAsync(default);
        }

        using (var database = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = DatabasePath, Connection = LiteDB.ConnectionType.Direct }))
        {
            var headers = database.GetCollection("segments");
            Assert.Equal(3, headers.Count()); // two free, one live
            headers.Delete(headers.Max("_id")); // the live segment's header, as damage would
        }

        await using var reopened = Open();

        // Records without a header are kept (nothing of them was known to be removed); the free ones are not.
        var read = await reopened.ReadBatchAsync("q", 0, 3000, default);
        Assert.Equal(Enumerable.Range(2049, 952).Select(i => $"m{i}"), read.Select(Text));
        Assert.Contains(_logs.Entries, e => e.EventId.Id == 4001);
    }
}
