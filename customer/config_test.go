package customer

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigsAreValid(t *testing.T) {
	if err := DefaultMemoryConfig().Validate(); err != nil {
		t.Errorf("DefaultMemoryConfig: %v", err)
	}
	if err := DefaultRedisConfig().Validate(); err != nil {
		t.Errorf("DefaultRedisConfig: %v", err)
	}
}

// checkConfigError wants err to wrap ErrInvalidConfig and to name the field,
// the bad value and what is allowed, so an operator can fix it from the log.
func checkConfigError(t *testing.T, err error, field, value string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{field, value, "allowed"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %q, want it to contain %q", err, want)
		}
	}
}

func TestMemoryConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		field, value string
		mutate       func(*MemoryConfig)
	}{
		{"MaxCustomers", "0", func(c *MemoryConfig) { c.MaxCustomers = 0 }},
		{"MaxCustomers", "-5", func(c *MemoryConfig) { c.MaxCustomers = -5 }},
		{"MaxRecent", "0", func(c *MemoryConfig) { c.MaxRecent = 0 }},
		{"MaxRecent", "1001", func(c *MemoryConfig) { c.MaxRecent = 1001 }},
	} {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			c := DefaultMemoryConfig()
			tc.mutate(&c)
			checkConfigError(t, c.Validate(), tc.field+" = "+tc.value, tc.value)
		})
	}
}

func TestRedisConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		field, value string
		mutate       func(*RedisConfig)
	}{
		{"URL", "is empty", func(c *RedisConfig) { c.URL = "" }},
		{"URL", "http://127.0.0.1:6379", func(c *RedisConfig) { c.URL = "http://127.0.0.1:6379" }},
		{"URL", "redis://127.0.0.1:6379/x", func(c *RedisConfig) { c.URL = "redis://127.0.0.1:6379/x" }},
		{"KeyPrefix", `""`, func(c *RedisConfig) { c.KeyPrefix = "" }},
		{"KeyPrefix", strings.Repeat("p", 129), func(c *RedisConfig) { c.KeyPrefix = strings.Repeat("p", 129) }},
		{"KeyPrefix", `"app:{cust}:"`, func(c *RedisConfig) { c.KeyPrefix = "app:{cust}:" }},
		{"MaxRecent", "0", func(c *RedisConfig) { c.MaxRecent = 0 }},
		{"MaxRecent", "5000", func(c *RedisConfig) { c.MaxRecent = 5000 }},
		{"TTL", "500ms", func(c *RedisConfig) { c.TTL = 500 * time.Millisecond }},
		{"TTL", "-1h0m0s", func(c *RedisConfig) { c.TTL = -time.Hour }},
		{"DialTimeout", "0s", func(c *RedisConfig) { c.DialTimeout = 0 }},
		{"ReadTimeout", "-1ns", func(c *RedisConfig) { c.ReadTimeout = -1 }},
		{"WriteTimeout", "1m0s", func(c *RedisConfig) { c.WriteTimeout = time.Minute }},
		{"PoolSize", "0", func(c *RedisConfig) { c.PoolSize = 0 }},
	} {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			c := DefaultRedisConfig()
			tc.mutate(&c)
			err := c.Validate()
			checkConfigError(t, err, tc.field, tc.value)
			if _, nerr := NewRedis(c); !errors.Is(nerr, ErrInvalidConfig) {
				t.Fatalf("NewRedis accepted a config Validate rejects: %v", nerr)
			}
		})
	}
}

func TestRedisConfig_ValidateReportsEveryBadField(t *testing.T) {
	c := DefaultRedisConfig()
	c.MaxRecent, c.PoolSize = 0, 0
	err := c.Validate()
	for _, want := range []string{"MaxRecent = 0", "PoolSize = 0"} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
}

func TestRedisConfig_TTLZeroMeansNoExpiry(t *testing.T) {
	c := DefaultRedisConfig()
	c.TTL = 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRedisConfig_PasswordNeverShown(t *testing.T) {
	const secret = "s3cret-pw"
	for _, u := range []string{
		"redis://tsunagu:" + secret + "@redis.internal:6379/0", // valid
		"redis://:" + secret + "@redis.internal:6379/0",        // password only
		"redis://tsunagu:" + secret + "@redis.internal:port/0", // does not parse
		"http://tsunagu:" + secret + "@redis.internal:6379",    // wrong scheme
		"redis://tsunagu:" + secret + "@redis.internal:6379/x", // bad db
	} {
		c := DefaultRedisConfig()
		c.URL = u
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "redis", c)
		shown := map[string]string{
			"String":   c.String(),
			"%v":       fmt.Sprintf("%v", c),
			"%+v":      fmt.Sprintf("%+v", c),
			"slog":     logged.String(),
			"Validate": fmt.Sprint(c.Validate()),
		}
		for how, s := range shown {
			if strings.Contains(s, secret) {
				t.Errorf("%s shows the password of %s: %s", how, u, s)
			}
		}
		if !strings.Contains(c.String(), "redis.internal") {
			t.Errorf("String() = %s, want the host kept", c.String())
		}
	}
}
