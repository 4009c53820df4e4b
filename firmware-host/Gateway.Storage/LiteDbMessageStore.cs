using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;
using Gateway.Routing;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage;

/// <summary>
/// Durable queues in one LiteDB file (ARCHITECTURE.md, store-and-forward). LiteDB is
/// synchronous, so one dedicated thread owns the database and takes operations from a bounded
/// channel: it gathers whatever is waiting into one transaction, commits it, and, in
/// <see cref="StoreDurability.Durable"/> mode, fsyncs LiteDB's log file before answering anyone
/// (LiteDB's Commit() writes the transaction there but never fsyncs it; at open LiteDB reads
/// back every transaction the log confirms, see <see cref="LiteDbLogFile"/>). The log is
/// checkpointed into the data file once it holds <see cref="StoreOptions.CheckpointBytes"/>,
/// always after an fsync of it. Under load many appends share one transaction and one fsync;
/// each caller still waits for its own. When appends keep coming (the last group held
/// <see cref="LoadedGroup"/> operations or more, and as many more arrived while it was written),
/// the writer lets them gather for <see cref="StoreOptions.GroupLinger"/> before the next group:
/// fewer, larger transactions and fsyncs per message, and publishers acknowledged that much
/// later. Writers that each wait for their own commit are never held up that way (nothing
/// arrives while their group is written); anything but an append (a consumer's read, a removal
/// sync) ends the wait at once.
/// Removals (messages the cloud confirmed) wait on their own for up to
/// <see cref="RemovalDelay"/> or <see cref="MaxDeferredRemovals"/> messages and are written
/// with the next group that writes anyway: a drain then costs a transaction per hundreds of
/// confirmations, not per PUBACK, and a crash can only deliver those again, never lose one; a
/// consumer that bounds those redeliveries (an uplink, to its in-flight window) has them written
/// with <see cref="SyncRemovalsAsync"/>.
/// </summary>
public sealed partial class LiteDbMessageStore : IMessageStore, IRetainedMessageStore, IDefinitionStore, IAsyncDisposable
{
    private readonly Channel<StoreOperation> _operations;
    private readonly StoreOptions _options;
    private readonly ILogger _logger;
    private readonly SegmentLog _log; // writer thread only
    private readonly StoreLock _lock;
    private LiteDbLogFile _logFile;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, QueueLogInfo> _atOpen = new(StringComparer.Ordinal);
    private readonly Thread _writer;
    // Ends the writer's wait for more appends. It blocks at once rather than spinning first: the
    // wait is there to give the CPU to the publishers. Not disposed: it holds no handle (its wait
    // handle is never asked for), and a submitter may still signal it while the store closes.
    private readonly ManualResetEventSlim _hurry = new(initialState: false, spinCount: 0);
    private int _urgent; // 1: something other than an append is waiting for the writer
    private int _lingering; // 1: the writer waits for more appends
    private int _arrivedWhileWriting; // writer thread only: operations that came in while the last group was written
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // A crash loses at most this much of the messages' age.
    private static readonly TimeSpan ClockSaveInterval = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan DiskCheckInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ClockSaveMinInterval = TimeSpan.FromSeconds(1);

    /// <summary>Removals are written at most this long after the first one not yet written.</summary>
    internal static readonly TimeSpan RemovalDelay = TimeSpan.FromMilliseconds(10);

    /// <summary>Removed messages not yet written are written once there are this many.</summary>
    internal const int MaxDeferredRemovals = 256;

    /// <summary>A group this large means the store is under load: the next one may wait for more.</summary>
    internal const int LoadedGroup = 16;

    private readonly TimeProvider _time;
    private readonly ITimer _clockSaver;
    private readonly ITimer _diskWatch;
    private readonly ITimer _removalWriter;
    private readonly long _openedAt;
    private LiteDatabase _database;
    private TimeSpan _clockAtOpen;
    private long _groups;
    private int _disposed;
    private long _operationCount;
    private long _refusedLowDisk;
    private long _clockSavedAt;
    private long _deferredSince; // timestamp of the oldest removal not yet written; 0 = none (writer thread)
    private int _deferredRemovals; // writer thread
    private bool _writeRemovals; // writer thread
    private volatile bool _lowDisk;

    private LiteDbMessageStore(StoreLock storeLock, LiteDatabase database, LiteDbLogFile logFile, SegmentLog log, string path, StoreOptions options, ILogger logger)
    {
        _lock = storeLock;
        _logFile = logFile;
        _log = log;
        foreach (var queue in log.Queues.Keys)
        {
            _atOpen[queue] = log.Describe(queue);
        }

        MessageCount = log.MessageCount;
        _database = database;
        Path = path;
        _options = options;
        _logger = logger;
        _operations = Channel.CreateBounded<StoreOperation>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _time = options.TimeProvider;
        _openedAt = _time.GetTimestamp();
        _clockAtOpen = LoadClock();
        Definitions = LoadDefinitions(database);
        CheckDisk();
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "gateway-store" };
        _writer.Start();
        _clockSaver = _time.CreateTimer(static state => ((LiteDbMessageStore)state!).Post(new SaveClockOperation()), this, ClockSaveInterval, ClockSaveInterval);
        _diskWatch = _time.CreateTimer(static state => ((LiteDbMessageStore)state!).CheckDisk(), this, DiskCheckInterval, DiskCheckInterval);
        _removalWriter = _time.CreateTimer(static state => ((LiteDbMessageStore)state!).Post(new WriteRemovalsOperation()), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public string Path { get; }

    /// <summary>How much of LiteDB's log is on disk (tests build what a power cut would leave).</summary>
    internal long SyncedLogLength => _logFile.SyncedLength;

    /// <summary>Tests hold the writer here to queue up a known set of operations.</summary>
    internal ManualResetEventSlim? TestGate { get; set; }

    /// <summary>Messages in the store when it was opened.</summary>
    public long MessageCount { get; }

    /// <summary>Transactions committed so far; fewer than <see cref="Operations"/> when writes were grouped.</summary>
    public long Groups => Interlocked.Read(ref _groups);

    public long Operations => Interlocked.Read(ref _operationCount);

    /// <summary>True while free disk space is under <see cref="StoreOptions.MinFreeBytes"/>: appends are refused.</summary>
    public bool LowOnDisk => _lowDisk;

    /// <summary>Appends refused because the disk was under the reserve.</summary>
    public long RefusedLowDisk => Interlocked.Read(ref _refusedLowDisk);

    /// <summary>Bytes the store takes on disk: the data file and LiteDB's log beside it (two stats).</summary>
    public long SizeOnDisk => LengthOf(Path) + LengthOf(LiteDbLogFile.PathOf(Path));

    /// <summary>
    /// Opens (or creates) the store; a damaged file is moved aside and what can be read is
    /// recovered. Throws <see cref="StoreInUseException"/> while another process has it open.
    /// </summary>
    public static LiteDbMessageStore Open(StoreOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(options.DataDirectory);
        var path = System.IO.Path.GetFullPath(System.IO.Path.Combine(options.DataDirectory, options.FileName));
        var storeLock = StoreLock.Acquire(path);
        try
        {
            var (database, logFile, log) = StoreRecovery.OpenOrRecover(path, options.CheckpointBytes, logger, (database, logFile) => OpenLog(database, logFile, logger), options.RecoveryStepReached);
            try
            {
                logFile.SyncDirectory(); // before anyone is told a write is on disk
            }
            catch
            {
                database.Dispose();
                logFile.Dispose();
                throw;
            }

            var store = new LiteDbMessageStore(storeLock, database, logFile, log, path, options, logger);
            StoreLog.Opened(logger, path, options.Durability, store.MessageCount, log.Queues.Count);
            return store;
        }
        catch
        {
            storeLock.Dispose();
            throw;
        }
    }

    private static SegmentLog OpenLog(LiteDatabase database, LiteDbLogFile logFile, ILogger logger)
    {
        var log = new SegmentLog(database, logger);
        log.Load(database, verify: true);
        var imported = log.ImportLegacy(logFile);
        if (imported > 0)
        {
            StoreLog.Imported(logger, imported);
        }

        return log;
    }

    public TimeSpan Clock => _clockAtOpen + _time.GetElapsedTime(_openedAt);

    /// <summary>Appends at the next offset of the queue's log once it is on disk; returns the offset.</summary>
    public ValueTask<long> AppendAsync(string queue, GatewayMessage message, CancellationToken cancellationToken) =>
        SubmitAsync(new AppendOperation(queue, null, message, Clock), cancellationToken);

    public bool TryAppend(string queue, long offset, GatewayMessage message, TimeSpan enqueuedAt, out Task committed)
    {
        if (_lowDisk)
        {
            Interlocked.Increment(ref _refusedLowDisk);
            committed = Task.CompletedTask;
            return false;
        }

        var operation = new AppendOperation(queue, offset, message, enqueuedAt);
        committed = operation.Task;
        return _operations.Writer.TryWrite(operation);
    }

    public QueueLogInfo OpenQueue(string queue) => _atOpen.TryRemove(queue, out var info) ? info : default;

    public async ValueTask<IReadOnlyList<StoredMessage>> ReadBatchAsync(string queue, long fromOffset, long toOffset, int max, CancellationToken cancellationToken) =>
        await SubmitAsync(new ReadOperation(queue, fromOffset, toOffset, max), cancellationToken);

    /// <summary>Reads up to <paramref name="max"/> messages from <paramref name="fromOffset"/> on.</summary>
    public ValueTask<IReadOnlyList<StoredMessage>> ReadBatchAsync(string queue, long fromOffset, int max, CancellationToken cancellationToken) =>
        ReadBatchAsync(queue, fromOffset, long.MaxValue, max, cancellationToken);

    /// <summary>Removes everything up to and including <paramref name="offset"/>.</summary>
    public async ValueTask CommitAsync(string queue, long offset, CancellationToken cancellationToken) =>
        await SubmitAsync(new TrimOperation(queue, 0, offset), cancellationToken);

    public void Remove(string queue, long offset) => Post(new TrimOperation(queue, offset, offset));

    public void RemoveRange(string queue, long first, long last) => Post(new TrimOperation(queue, first, last));

    /// <summary>Writes the removals deferred so far at once, checkpointed like an append in durable mode.</summary>
    public async ValueTask SyncRemovalsAsync(CancellationToken cancellationToken) =>
        await SubmitAsync(new SyncRemovalsOperation(), cancellationToken);

    /// <summary>How many messages a queue holds.</summary>
    public ValueTask<long> CountAsync(string queue, CancellationToken cancellationToken) =>
        SubmitAsync(new CountOperation(queue), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return; // registered under more than one service type: disposed once per registration
        }

        await _clockSaver.DisposeAsync();
        await _diskWatch.DisposeAsync();
        await _removalWriter.DisposeAsync();
        _operations.Writer.TryComplete();
        await _stopped.Task;
        try
        {
            if (_unavailable is not null)
            {
                throw new IOException("The store could not be reopened", _unavailable);
            }

            _database.BeginTrans();
            _log.Persist(); // removals still deferred
            _database.Commit();
            SaveClock();
            Checkpoint();
        }
        catch (Exception ex) when (ex is LiteException or IOException)
        {
            StoreLog.GroupFailed(_logger, 1, ex);
        }

        _log.Dispose();
        CloseDatabase(failed: false);
        _lock.Dispose();
    }

    private async ValueTask<T> SubmitAsync<T>(StoreOperation<T> operation, CancellationToken cancellationToken)
    {
        await _operations.Writer.WriteAsync(operation, cancellationToken);
        if (operation is not AppendOperation)
        {
            Hurry();
        }

        return await operation.Task.WaitAsync(cancellationToken);
    }

    // Removals never make anyone wait: they are bounded by the deliveries outstanding, so when
    // the writer's queue is full they wait for room on their own.
    private void Post(StoreOperation operation)
    {
        operation.Detached = true;
        if (!_operations.Writer.TryWrite(operation))
        {
            _ = PostLaterAsync(operation);
        }
    }

    private async Task PostLaterAsync(StoreOperation operation)
    {
        try
        {
            await _operations.Writer.WriteAsync(operation);
        }
        catch (ChannelClosedException)
        {
            // Shutting down: the message stays and is delivered again after the restart.
        }
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
                Linger(group.Count);
                Volatile.Write(ref _urgent, 0); // whatever is waiting now goes into this group
                group.Clear();
                while (group.Count < _options.MaxGroupSize && reader.TryRead(out var operation))
                {
                    group.Add(operation);
                }

                RunGroupSafely(group);
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    // Something other than an append is waiting: the writer stops waiting for more appends.
    private void Hurry()
    {
        Interlocked.Exchange(ref _urgent, 1); // a full fence, as in Linger: one of the two sees the other
        if (Volatile.Read(ref _lingering) == 1)
        {
            _hurry.Set();
        }
    }

    // Lets appends gather for a while before the next group when they keep coming: the last group
    // was large and more arrived while it was written. Writers that each wait for their own commit
    // (nothing arrives meanwhile) are never held up; anything but an append ends the wait.
    private void Linger(int lastGroup)
    {
        if (lastGroup < LoadedGroup || _arrivedWhileWriting < LoadedGroup || _options.GroupLinger <= TimeSpan.Zero || Volatile.Read(ref _urgent) == 1)
        {
            return;
        }

        Interlocked.Exchange(ref _lingering, 1); // a full fence: a submitter either sees it or is seen below
        if (Volatile.Read(ref _urgent) == 0)
        {
            _hurry.Wait(_options.GroupLinger);
        }

        Volatile.Write(ref _lingering, 0);
        _hurry.Reset(); // a signal that came too late to matter
    }

    private void RunGroup(List<StoreOperation> group)
    {
        if (!EnsureOpen(group))
        {
            return;
        }

        if (TryWrite(group, out var deferred, out var failure))
        {
            Completed(group, deferred);
            return;
        }

        if (failure is StoreFullException)
        {
            DiskFull(group, failure); // nothing was written: nothing to undo
            return;
        }

        // One operation's failure must not fail the others: the group is rolled back and each
        // operation tried again in a transaction of its own, so only the culprit fails.
        StoreLog.GroupFailed(_logger, group.Count, failure);
        Recover(failure);
        if (group.Count == 1)
        {
            group[0].Fail(failure);
            return;
        }

        RunEach(group);
    }

    // Applies the group in one transaction, commits it and makes it durable; false (everything
    // rolled back by the caller) when any of it failed.
    private bool TryWrite(List<StoreOperation> group, out bool deferred, [NotNullWhen(false)] out Exception? failure)
    {
        bool writes = false, needsFlush = false;
        deferred = false;
        failure = null;
        try
        {
            ReserveFor(group);
            _database.BeginTrans();
            foreach (var operation in group)
            {
                var effect = operation.Apply(this);
                writes |= effect != StoreEffect.None;
                needsFlush |= effect == StoreEffect.MustFlush;
            }

            deferred = !needsFlush && DeferRemovals();
            if (deferred)
            {
                _database.Rollback(); // nothing was written
                return true;
            }

            _log.Persist();
            ForgetDeferredRemovals();
            if (writes && _time.GetElapsedTime(_clockSavedAt) >= ClockSaveMinInterval)
            {
                SaveClock(); // at most once a second: a crash loses under a second of message age
            }

            _database.Commit();
            if (needsFlush && _options.Durability == StoreDurability.Durable)
            {
                _logFile.Sync();
            }

            if (_logFile.IsFull && _logFile.TryReserveCheckpoint())
            {
                Checkpoint();
            }

            if (writes && WriteFailure is not null)
            {
                WriteFailure = null;
                StoreLog.WritesRecovered(_logger, Path);
            }

            return true;
        }
#pragma warning disable CA1031 // Whatever LiteDB throws fails this group's callers; the writer thread must live on.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            failure = ex;
            return false;
        }
    }

    private void Completed(List<StoreOperation> group, bool deferred)
    {
        if (!deferred)
        {
            Interlocked.Increment(ref _groups);
        }

        Interlocked.Add(ref _operationCount, group.Count);
        _arrivedWhileWriting = _operations.Reader.Count; // before anyone in the group is answered
        foreach (var operation in group)
        {
            operation.Complete();
        }
    }

    // Fsynced around in fast mode too: an fsync per 4 MB costs nothing, and a power cut in the
    // middle of a checkpoint then loses only what was not yet synced, never the file.
    private void Checkpoint() => _logFile.Checkpoint(_database);

    private void ForgetDeferredRemovals()
    {
        _deferredSince = 0;
        _deferredRemovals = 0;
        _writeRemovals = false;
    }

    // True when this group only removed messages (nothing written yet) and those removals may
    // wait: written with a later group, or when the timer armed here runs a group for them.
    private bool DeferRemovals()
    {
        if (!_log.HasChanges)
        {
            return false; // nothing to write (a read-only group commits an empty transaction)
        }

        if (_writeRemovals || _deferredRemovals >= MaxDeferredRemovals)
        {
            return false;
        }

        if (_deferredSince == 0)
        {
            _deferredSince = _time.GetTimestamp();
            _removalWriter.Change(RemovalDelay, Timeout.InfiniteTimeSpan);
            return true;
        }

        return _time.GetElapsedTime(_deferredSince) < RemovalDelay;
    }

    // One statfs a second from a timer (and at open); appends only read the flag.
    private void CheckDisk()
    {
        if (_options.MinFreeBytes <= 0)
        {
            return;
        }

        long free;
        try
        {
            free = _options.FreeSpace(_options.DataDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // unknown: keep the last answer
        }

        var low = free < _options.MinFreeBytes;
        if (low != _lowDisk)
        {
            _lowDisk = low;
            if (low)
            {
                StoreLog.DiskLow(_logger, _options.DataDirectory, free / (1024 * 1024), _options.MinFreeBytes / (1024 * 1024));
            }
            else
            {
                StoreLog.DiskRecovered(_logger, _options.DataDirectory, free / (1024 * 1024), Interlocked.Read(ref _refusedLowDisk));
            }
        }
    }

    private void TryRollback()
    {
        try
        {
            _database.Rollback();
        }
#pragma warning disable CA1031 // The transaction is gone either way (a failed engine may throw anything here).
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private static long LengthOf(string file)
    {
        var info = new FileInfo(file);
        return info.Exists ? info.Length : 0;
    }

    private ILiteCollection<BsonDocument> Meta => _database.GetCollection(MessageDocument.MetaCollection);

    private TimeSpan LoadClock()
    {
        var document = Meta.FindById(MessageDocument.ClockId);
        return document is null ? TimeSpan.Zero : TimeSpan.FromMilliseconds(document["ms"].AsInt64);
    }

    private void SaveClock()
    {
        Meta.Upsert(new BsonDocument { ["_id"] = MessageDocument.ClockId, ["ms"] = (long)Clock.TotalMilliseconds });
        _clockSavedAt = _time.GetTimestamp();
    }
}
