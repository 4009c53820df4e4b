using Microsoft.Extensions.Logging;

namespace Gateway.Storage;

/// <summary>Store log events: ids 4000-4099.</summary>
internal static partial class StoreLog
{
    [LoggerMessage(EventId = 4000, Level = LogLevel.Information, Message = "Message store {Path} open ({Durability}): {Messages} messages in {Queues} queues")]
    public static partial void Opened(ILogger logger, string path, StoreDurability durability, long messages, int queues);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Critical, Message = "Message store {Path} is damaged ({Reason}); moved to {MovedTo}, recovered {Recovered} messages into a new store, {Lost} could not be read")]
    public static partial void Recovered(ILogger logger, string path, string reason, string movedTo, long recovered, long lost);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Error, Message = "Message store write group of {Operations} operations failed")]
    public static partial void GroupFailed(ILogger logger, int operations, Exception exception);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Critical, Message = "Messages {First} to {Last} of queue {Queue} could not be read back from the store ({Live} not yet consumed are lost)")]
    public static partial void SegmentLost(ILogger logger, string queue, long first, long last, int live, Exception exception);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Information, Message = "Moved {Messages} stored messages into the segment format")]
    public static partial void Imported(ILogger logger, long messages);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "Message store {Path}: the last write before the gateway stopped was cut short; dropped its {Bytes} bytes from the log (nobody had been answered for them)")]
    public static partial void TornLogCut(ILogger logger, string path, long bytes);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Critical, Message = "Message store {Path} was damaged and the gateway stopped while recovering it; the recovered copy, which was complete, is now the store and the damaged file was moved to {MovedTo}")]
    public static partial void RecoveryFinished(ILogger logger, string path, string movedTo);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Error, Message = "Message store operation {Operation} failed on its own (the others of its group were written)")]
    public static partial void OperationFailed(ILogger logger, string operation, Exception exception);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Warning, Message = "Message store {Path} reopened after a failed write ({Reason}): {Messages} messages, every committed write kept")]
    public static partial void Reopened(ILogger logger, string path, string reason, long messages);

    [LoggerMessage(EventId = 4009, Level = LogLevel.Critical, Message = "Message store {Path} cannot be opened again after a failed write; every write fails until it can (tried again each second)")]
    public static partial void ReopenFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Warning, Message = "Message store {Path}: closing the database after a failed write failed too")]
    public static partial void CloseFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Critical, Message = "Message store {Path}: the disk is full ({Reason}); writes are refused, nothing half written, until space is freed")]
    public static partial void DiskFull(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 4014, Level = LogLevel.Warning, Message = "Message store {Path} takes writes again")]
    public static partial void WritesRecovered(ILogger logger, string path);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Critical, Message = "Free space under {Directory} is {FreeMegabytes} MB, below the {ReserveMegabytes} MB reserve (Storage:MinFreeMegabytes): new messages for durable queues are refused until space is freed")]
    public static partial void DiskLow(ILogger logger, string directory, long freeMegabytes, long reserveMegabytes);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Warning, Message = "Free space under {Directory} is back to {FreeMegabytes} MB; accepting messages again ({Refused} were refused meanwhile)")]
    public static partial void DiskRecovered(ILogger logger, string directory, long freeMegabytes, long refused);
}
