using System.Device.Gpio;
using System.Device.Gpio.Drivers;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Gateway.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gateway.Gpio;

/// <summary>
/// GPIO pins as message endpoints. Inputs publish <c>gpio/&lt;name&gt;</c> (routing key
/// <c>gpio.&lt;name&gt;</c> on amq.topic) on each debounced edge; outputs follow
/// <c>gpio/&lt;name&gt;/set</c> and publish their new state; status LEDs show link states. A pin
/// that cannot be opened is reported and left out; the rest of the gateway is unaffected.
/// </summary>
public sealed partial class GpioService(
    IOptions<GpioOptions> options,
    IMessageRouter router,
    GatewayStatus status,
    TimeProvider time,
    ILogger<GpioService> logger) : BackgroundService
{
    public const string CommandQueue = "gateway.gpio";
    private const int EventBuffer = 1024;

    private readonly GpioOptions _options = options.Value;
    private readonly Channel<PinEvent> _events = CreateEventBuffer(logger);
    private readonly Dictionary<string, int> _outputs = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The driver in use once <see cref="Ready"/> (a <see cref="SimulatedGpioDriver"/> where there is no chip).</summary>
    public GpioDriver? Driver { get; private set; }

    /// <summary>Completes when every configured pin is open and listening, or GPIO is known to be unavailable.</summary>
    public Task Ready => _ready.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.Pins.Count == 0 && _options.Leds.Count == 0)
        {
            _ready.TrySetResult();
            return;
        }

        GpioDriver driver;
        string driverName;
        try
        {
            (driver, driverName) = CreateDriver();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            GpioLog.ChipUnavailable(logger, _options.Chip, ex.Message);
            _ready.TrySetResult();
            return;
        }

        using var controller = new GpioController(driver);
        var inputs = OpenInputs(controller);
        OpenOutputs(controller);
        var leds = OpenLeds(controller);
        GpioLog.Started(logger, driverName, inputs, _outputs.Count, leds.Count);
        Driver = driver;

        using var commands = _outputs.Count > 0 ? SubscribeCommands() : null;
        _ready.TrySetResult();
        await Task.WhenAll(
            PublishEventsAsync(stoppingToken),
            commands is null ? Task.CompletedTask : FollowCommandsAsync(controller, commands, stoppingToken),
            leds.Count > 0 ? DriveLedsAsync(controller, leds, stoppingToken) : Task.CompletedTask);
    }

    private (GpioDriver Driver, string Name) CreateDriver()
    {
        var driver = _options.Driver;
        if (driver == "auto")
        {
            driver = File.Exists($"/dev/gpiochip{_options.Chip}") ? "libgpiod" : "simulated";
        }

        return driver switch
        {
            "libgpiod" => (new LibGpiodDriver(_options.Chip), "libgpiod"),
            "sysfs" => (new SysFsDriver(), "sysfs"),
            _ => (new SimulatedGpioDriver(_options.SimulatedPinCount), "simulated"),
        };
    }

    private int OpenInputs(GpioController controller)
    {
        var opened = 0;
        foreach (var pin in _options.Pins.Where(p => p.Mode == "input"))
        {
            var mode = pin.Pull switch { "up" => PinMode.InputPullUp, "down" => PinMode.InputPullDown, _ => PinMode.Input };
            var edges = pin.Edge switch { "rising" => PinEventTypes.Rising, "falling" => PinEventTypes.Falling, _ => PinEventTypes.Rising | PinEventTypes.Falling };
            if (TryOpen(controller, pin.Name, pin.Pin, mode))
            {
                var debouncer = new Debouncer(pin.Name, TimeSpan.FromMilliseconds(pin.DebounceMs), time, this);
                controller.RegisterCallbackForPinValueChangedEvent(pin.Pin, edges, debouncer.OnEdge);
                opened++;
            }
        }

        return opened;
    }

    private void OpenOutputs(GpioController controller)
    {
        foreach (var pin in _options.Pins.Where(p => p.Mode == "output"))
        {
            if (TryOpen(controller, pin.Name, pin.Pin, PinMode.Output))
            {
                controller.Write(pin.Pin, PinValue.Low);
                _outputs[pin.Name] = pin.Pin;
            }
        }
    }

    private List<StatusLedOptions> OpenLeds(GpioController controller) =>
        [.. _options.Leds.Where(led => TryOpen(controller, "led:" + led.Source, led.Pin, PinMode.Output))];

    private bool TryOpen(GpioController controller, string name, int pin, PinMode mode)
    {
        // GpioController hands back an open pin without complaint; two configured endpoints on
        // one line would silently reconfigure the first.
        if (pin < controller.PinCount && controller.IsPinOpen(pin))
        {
            GpioLog.PinUnavailable(logger, name, pin, "the line is busy: another configured pin already uses it");
            return false;
        }

        try
        {
            controller.OpenPin(pin, mode);
            return true;
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            GpioLog.PinUnavailable(logger, name, pin, ex.Message);
            return false;
        }
    }

    private QueueConsumer SubscribeCommands()
    {
        router.DeclareQueue(CommandQueue, new QueueOptions { Arguments = new Dictionary<string, object?> { ["x-max-length"] = 1000 } });
        foreach (var name in _outputs.Keys)
        {
            router.Bind(MessageRouter.AmqTopic, CommandQueue, $"gpio.{name}.set");
        }

        return router.GetQueue(CommandQueue).AddConsumer(new ConsumerOptions { AutoAck = true, Tag = "gpio" });
    }

    private async Task FollowCommandsAsync(GpioController controller, QueueConsumer commands, CancellationToken cancellationToken)
    {
        try
        {
            while (await commands.WaitToReadAsync(cancellationToken))
            {
                while (commands.TryRead(out var delivery))
                {
                    var key = delivery.Message.RoutingKey; // gpio.<name>.set
                    var name = key["gpio.".Length..^".set".Length];
                    if (!_outputs.TryGetValue(name, out var pin))
                    {
                        continue;
                    }

                    var payload = Encoding.UTF8.GetString(delivery.Message.Body.Span).Trim();
                    PinValue? level = payload.ToLowerInvariant() switch
                    {
                        "1" or "on" => PinValue.High,
                        "0" or "off" => PinValue.Low,
                        "toggle" => controller.Read(pin) == PinValue.High ? PinValue.Low : PinValue.High,
                        _ => null,
                    };
                    if (level is not { } value)
                    {
                        GpioLog.BadCommand(logger, name, payload.Length > 64 ? payload[..64] + "…" : payload);
                        continue;
                    }

                    controller.Write(pin, value);
                    await PublishStateAsync(name, value == PinValue.High ? 1 : 0, edge: null, time.GetUtcNow(), cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task PublishEventsAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var pinEvent in _events.Reader.ReadAllAsync(cancellationToken))
            {
                await PublishStateAsync(pinEvent.Name, pinEvent.Level, pinEvent.Edge, pinEvent.At, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task PublishStateAsync(string name, int level, string? edge, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var timestamp = at.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
        var json = edge is null
            ? $"{{\"pin\":\"{name}\",\"level\":{level},\"timestamp\":\"{timestamp}\"}}"
            : $"{{\"pin\":\"{name}\",\"level\":{level},\"edge\":\"{edge}\",\"timestamp\":\"{timestamp}\"}}";
        var message = new GatewayMessage(
            MessageRouter.AmqTopic,
            "gpio." + name,
            Encoding.UTF8.GetBytes(json),
            new MessageProperties { Persistent = true, ContentType = "application/json", Timestamp = at },
            new MessageOrigin("gpio", name, null));
        var result = await router.PublishAsync(message, cancellationToken);
        if (result.Status == RouteStatus.Rejected)
        {
            GpioLog.EventRefused(logger, name, json, result.RejectedCount, result.QueueCount);
        }
    }

    // Full of events the router has not taken yet: the oldest makes room, and the drops are
    // logged at the 1st, 2nd, 4th, 8th... so an input that chatters cannot flood the log.
    private static Channel<PinEvent> CreateEventBuffer(ILogger logger)
    {
        long dropped = 0;
        return Channel.CreateBounded<PinEvent>(
            new BoundedChannelOptions(EventBuffer) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            _ =>
            {
                var count = Interlocked.Increment(ref dropped);
                if ((count & (count - 1)) == 0)
                {
                    GpioLog.EventsDropped(logger, count);
                }
            });
    }

    private void OnDebouncedEdge(string name, PinEventTypes edge, DateTimeOffset at)
    {
        var rising = edge == PinEventTypes.Rising;
        _events.Writer.TryWrite(new PinEvent(name, rising ? 1 : 0, rising ? "rising" : "falling", at)); // drops the oldest when full
    }

    private readonly record struct PinEvent(string Name, int Level, string Edge, DateTimeOffset At);

    /// <summary>Publishes the first edge and ignores those that follow within the debounce time.</summary>
    private sealed class Debouncer(string name, TimeSpan window, TimeProvider time, GpioService service)
    {
        private readonly Lock _sync = new();
        private long? _lastAccepted;

        public void OnEdge(object sender, PinValueChangedEventArgs e)
        {
            var now = time.GetTimestamp();
            lock (_sync)
            {
                if (_lastAccepted is { } last && time.GetElapsedTime(last, now) < window)
                {
                    return;
                }

                _lastAccepted = now;
            }

            service.OnDebouncedEdge(name, e.ChangeType, time.GetUtcNow());
        }
    }
}
