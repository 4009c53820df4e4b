using Microsoft.Extensions.Logging;

namespace Gateway.Gpio;

/// <summary>GPIO log events: ids 3000-3099.</summary>
internal static partial class GpioLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "GPIO: {Driver} driver, {Inputs} inputs, {Outputs} outputs, {Leds} status LEDs")]
    public static partial void Started(ILogger logger, string driver, int inputs, int outputs, int leds);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Error, Message = "GPIO chip {Chip} is not available ({Reason}); pins are disabled, the rest of the gateway runs")]
    public static partial void ChipUnavailable(ILogger logger, int chip, string reason);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "GPIO pin '{Name}' (line {Pin}) could not be opened: {Reason}; it is disabled, the rest of the gateway runs")]
    public static partial void PinUnavailable(ILogger logger, string name, int pin, string reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "GPIO output '{Name}': ignored payload '{Payload}' (expected 1, 0, on, off or toggle)")]
    public static partial void BadCommand(ILogger logger, string name, string payload);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "GPIO input events arrive faster than they can be published; {Dropped} dropped so far")]
    public static partial void EventsDropped(ILogger logger, long dropped);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "GPIO pin '{Name}': {Refused} queue(s) refused its message {Payload} (full with x-overflow reject-publish, or the disk below Storage:MinFreeMegabytes); {Delivered} queue(s) took it")]
    public static partial void EventRefused(ILogger logger, string name, string payload, int refused, int delivered);
}
