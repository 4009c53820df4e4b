using System.Device.Gpio;

namespace Gateway.Gpio;

/// <summary>
/// A GPIO chip in memory, for tests and machines without one: tests drive input edges with
/// <see cref="SetInput"/> and read outputs with <see cref="GetOutput"/> or wait for writes.
/// </summary>
public sealed class SimulatedGpioDriver(int pinCount) : GpioDriver
{
    private readonly Lock _sync = new();
    private readonly Dictionary<int, SimulatedPin> _pins = [];
    private readonly List<(int Pin, PinValue Value)> _writes = [];
    private readonly List<(int Pin, Func<int, bool> Condition, TaskCompletionSource Signal)> _writeWaiters = [];

    protected override int PinCount => pinCount;

    /// <summary>Sets an input's level as the outside world would, raising edge callbacks.</summary>
    public void SetInput(int pin, bool high)
    {
        PinChangeEventHandler? callback;
        PinEventTypes subscribed;
        PinEventTypes edge;
        lock (_sync)
        {
            var state = Get(pin);
            var value = high ? PinValue.High : PinValue.Low;
            if (state.Value == value)
            {
                return;
            }

            state.Value = value;
            edge = high ? PinEventTypes.Rising : PinEventTypes.Falling;
            callback = state.Callback;
            subscribed = state.Events;
        }

        if (callback is not null && (subscribed & edge) != 0)
        {
            callback(this, new PinValueChangedEventArgs(edge, pin));
        }
    }

    /// <summary>The level last written to an output.</summary>
    public bool GetOutput(int pin)
    {
        lock (_sync)
        {
            return Get(pin).Value == PinValue.High;
        }
    }

    /// <summary>Every write so far, in order (LEDs are rewritten on every blink tick).</summary>
    public IReadOnlyList<(int Pin, PinValue Value)> Writes
    {
        get
        {
            lock (_sync)
            {
                return [.. _writes];
            }
        }
    }

    /// <summary>Completes once <paramref name="pin"/> has been written <paramref name="count"/> times in all.</summary>
    public Task WaitForWritesAsync(int pin, int count) => WaitForWriteAsync(pin, writes => writes >= count);

    /// <summary>Completes once <paramref name="pin"/> holds <paramref name="high"/> (now or after a later write).</summary>
    public Task WaitForLevelAsync(int pin, bool high)
    {
        lock (_sync)
        {
            if (_pins.TryGetValue(pin, out var state) && state.IsOpen && (state.Value == PinValue.High) == high && state.Writes > 0)
            {
                return Task.CompletedTask;
            }
        }

        return WaitForWriteAsync(pin, _ => GetOutput(pin) == high);
    }

    protected override void OpenPin(int pinNumber)
    {
        lock (_sync)
        {
            var state = Get(pinNumber);
            if (state.IsOpen)
            {
                throw new InvalidOperationException($"GPIO line {pinNumber} is busy (already requested)");
            }

            state.IsOpen = true;
        }
    }

    protected override void ClosePin(int pinNumber)
    {
        lock (_sync)
        {
            var state = Get(pinNumber);
            state.IsOpen = false;
            state.Callback = null;
        }
    }

    protected override void SetPinMode(int pinNumber, PinMode mode)
    {
        lock (_sync)
        {
            Get(pinNumber).Mode = mode;
        }
    }

    protected override PinMode GetPinMode(int pinNumber)
    {
        lock (_sync)
        {
            return Get(pinNumber).Mode;
        }
    }

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => true;

    protected override PinValue Read(int pinNumber)
    {
        lock (_sync)
        {
            return Get(pinNumber).Value;
        }
    }

    protected override void Write(int pinNumber, PinValue value)
    {
        List<TaskCompletionSource>? signals = null;
        lock (_sync)
        {
            var state = Get(pinNumber);
            state.Value = value;
            state.Writes++;
            _writes.Add((pinNumber, value));
            for (var i = _writeWaiters.Count - 1; i >= 0; i--)
            {
                var (pin, condition, signal) = _writeWaiters[i];
                if (pin == pinNumber && condition(state.Writes))
                {
                    (signals ??= []).Add(signal);
                    _writeWaiters.RemoveAt(i);
                }
            }
        }

        signals?.ForEach(s => s.TrySetResult());
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken) =>
        throw new NotSupportedException("The simulated driver raises callbacks; it does not block for events.");

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback)
    {
        lock (_sync)
        {
            var state = Get(pinNumber);
            state.Callback += callback;
            state.Events |= eventTypes;
        }
    }

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback)
    {
        lock (_sync)
        {
            var state = Get(pinNumber);
            state.Callback -= callback;
        }
    }

    private Task WaitForWriteAsync(int pin, Func<int, bool> condition)
    {
        lock (_sync)
        {
            if (_pins.TryGetValue(pin, out var state) && condition(state.Writes))
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _writeWaiters.Add((pin, condition, signal));
            return signal.Task;
        }
    }

    private SimulatedPin Get(int pin)
    {
        if (pin < 0 || pin >= pinCount)
        {
            throw new ArgumentOutOfRangeException(nameof(pin), pin, $"The simulated GPIO chip has pins 0-{pinCount - 1}");
        }

        if (!_pins.TryGetValue(pin, out var state))
        {
            _pins[pin] = state = new SimulatedPin();
        }

        return state;
    }

    private sealed class SimulatedPin
    {
        public bool IsOpen { get; set; }

        public PinMode Mode { get; set; } = PinMode.Input;

        public PinValue Value { get; set; } = PinValue.Low;

        public PinChangeEventHandler? Callback { get; set; }

        public PinEventTypes Events { get; set; }

        public int Writes { get; set; }
    }
}
