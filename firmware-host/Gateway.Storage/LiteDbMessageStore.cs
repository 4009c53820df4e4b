using System.Threading.Channels;
using Gateway.Routing;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage;

/// <summary>
/// Durable queues in one LiteDB file (ARCHITECTURE.md, store-and-forward). LiteDB is
/// synchronous, so one dedicated thread owns the database and takes operations from a bounded
/// channel: it gathers whatever is waiting into one transaction, commits it, and, in
/// <see cref="StoreDurability.Durable"/> mode, checkpoints it to the data file before answering
/// anyone. LiteDB 5's Commit() returns before its pages are written; only Checkpoint() forces
/// them to disk, so a writer is told "stored" only once its group survived that. Under load many
/// appends share one transaction and one flush; each caller still waits for its own.
/// </summary>
public sealed partial class LiteDbMessageStore : IMessageStore, IRetainedMessageStore, IAsyncDisposable
{
    private readonly Channel<StoreOperation> _operations;
    private readonly StoreOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<string, long> _lastOffsets = new(StringComparer.Ordinal); // writer thread only
    private readonly Thread _writer;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private LiteDatabase _database;
    private long _groups;
    private long _operationCount;

    private LiteDbMessageStore(LiteDatabase database, string path, StoreOptions options, ILogger logger)
    {
        _database = database;
        Path = path;
        _options = options;
        _logger = logger;
        _operations = Channel.CreateBounded<StoreOperation>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        MessageCount = LoadOffsets();
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "gateway-store" };
        _writer.Start();
    }

    public string Path { get; }

    /// <summary>Tests hold the writer here to queue up a known set of operations.</summary>
    internal ManualResetEventSlim? TestGate { get; set; }

    /// <summary>Messages in the store when it was opened.</summary>
    public long MessageCount { get; }

    /// <summary>Transactions committed so far; fewer than <see cref="Operations"/> when writes were grouped.</summary>
    public long Groups => Interlocked.Read(ref _groups);

    public long Operations => Interlocked.Read(ref _operationCount);

    /// <summary>Opens (or creates) the store; a damaged file is moved aside and what can be read is recovered.</summary>
    public static LiteDbMessageStore Open(StoreOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(options.DataDirectory);
        var path = System.IO.Path.GetFullPath(System.IO.Path.Combine(options.DataDirectory, options.FileName));
        var database = StoreRecovery.OpenOrRecover(path, logger);
        var store = new LiteDbMessageStore(database, path, options, logger);
        StoreLog.Opened(logger, path, options.Durability, store.MessageCount, store.QueueCountAtOpen);
        return store;
    }

    public ValueTask<long> AppendAsync(string queue, GatewayMessage message, CancellationToken cancellationToken) =>
        SubmitAsync(new AppendOperation(queue, message), cancellationToken);

    public async ValueTask<IReadOnlyList<StoredMessage>> ReadBatchAsync(string queue, long fromOffset, int max, CancellationToken cancellationToken) =>
        await SubmitAsync(new ReadOperation(queue, fromOffset, max), cancellationToken);

    public async ValueTask CommitAsync(string queue, long offset, CancellationToken cancellationToken) =>
        await SubmitAsync(new TrimOperation(queue, offset), cancellationToken);

    public ValueTask<int> PurgeExpiredAsync(CancellationToken cancellationToken) =>
        ValueTask.FromResult(0); // Message age limits arrive with the uplink buffer limits.

    public ValueTask SetRetainedAsync(string topic, GatewayMessage? message, CancellationToken cancellationToken) =>
        new(SubmitAsync(new SetRetainedOperation(topic, message), cancellationToken).AsTask());

    public ValueTask<IReadOnlyList<KeyValuePair<string, GatewayMessage>>> LoadRetainedAsync(CancellationToken cancellationToken) =>
        SubmitAsync(new LoadRetainedOperation(), cancellationToken);

    /// <summary>How many messages a queue holds.</summary>
    public ValueTask<long> CountAsync(string queue, CancellationToken cancellationToken) =>
        SubmitAsync(new CountOperation(queue), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        _operations.Writer.TryComplete();
        await _stopped.Task;
        _database.Dispose();
    }

    private async ValueTask<T> SubmitAsync<T>(StoreOperation<T> operation, CancellationToken cancellationToken)
    {
        await _operations.Writer.WriteAsync(operation, cancellationToken);
        return await operation.Task.WaitAsync(cancellationToken);
    }

    private void WriterLoop()
    {
        var group = new List<StoreOperation>(_options.MaxGroupSize);
        var reader = _operations.Reader;
        try
        {
            // The one thread that owns LiteDB: it blocks here by design (STYLE.md: synchronous APIs
            // run on one dedicated worker fed through a bounded channel).
#pragma warning disable VSTHRD002
            while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
#pragma warning restore VSTHRD002
            {
                TestGate?.Wait();
                group.Clear();
                while (group.Count < _options.MaxGroupSize && reader.TryRead(out var operation))
                {
                    group.Add(operation);
                }

                RunGroup(group);
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    private void RunGroup(List<StoreOperation> group)
    {
        var writes = false;
        try
        {
            _database.BeginTrans();
            foreach (var operation in group)
            {
                writes |= operation.Apply(this);
            }

            _database.Commit();
            if (writes && _options.Durability == StoreDurability.Durable)
            {
                _database.Checkpoint();
            }
        }
#pragma warning disable CA1031 // Whatever LiteDB throws fails this group's callers; the writer thread must live on.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            StoreLog.GroupFailed(_logger, group.Count, ex);
            TryRollback();
            foreach (var operation in group)
            {
                operation.Fail(ex);
            }

            ReloadOffsets();
            return;
        }

        Interlocked.Increment(ref _groups);
        Interlocked.Add(ref _operationCount, group.Count);
        foreach (var operation in group)
        {
            operation.Complete();
        }
    }

    private void TryRollback()
    {
        try
        {
            _database.Rollback();
        }
        catch (Exception ex) when (ex is LiteException or IOException or InvalidOperationException)
        {
            // The transaction is gone either way.
        }
    }

    private ILiteCollection<BsonDocument> Log => _database.GetCollection(MessageDocument.Collection);

    private int QueueCountAtOpen { get; set; }

    // Returns how many messages there are; runs before the writer thread starts, or on it.
    private long LoadOffsets()
    {
        long count = 0;
        // Only the primary key is read, never the bodies.
        foreach (var row in Log.Query().Select(x => x["_id"]).ToEnumerable())
        {
            var id = (row.IsDocument ? row.AsDocument["_id"] : row).AsString;
            var queue = MessageDocument.QueueOf(id);
            var offset = MessageDocument.OffsetOf(id);
            if (!_lastOffsets.TryGetValue(queue, out var last) || offset > last)
            {
                _lastOffsets[queue] = offset;
            }

            count++;
        }

        QueueCountAtOpen = _lastOffsets.Count;
        return count;
    }

    private void ReloadOffsets()
    {
        _lastOffsets.Clear();
        LoadOffsets();
    }
}
