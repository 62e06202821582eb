package devbroker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// orphanDir is where setAsideOrphans moves partition directories of topics
// the broker does not know, under the data directory.
const orphanDir = "orphaned-partitions"

// setAsideOrphans moves partition directories of topics missing from the
// data directory's topic list to <dataDir>/orphaned-partitions. Such
// directories are what a crash left of topics that older versions of this
// broker auto-created without persisting them. Left in place, a topic
// created again under the same name appends to them while kfake indexes the
// file from position 0, so fetches return the old bytes at wrong positions
// (clients fail with errors such as "invalid array length").
//
// It reads only the topic names of kfake's topics.json; a data directory
// without one (fresh, or never started) is left alone.
func setAsideOrphans(dataDir string, log *slog.Logger) error {
	topics, err := knownTopics(dataDir)
	if err != nil || topics == nil {
		return err
	}
	parts := filepath.Join(dataDir, "partitions")
	entries, err := os.ReadDir(parts)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("devbroker: data directory %s: %w", dataDir, err)
	}
	for _, e := range entries {
		topic, ok := partitionTopic(e.Name())
		if !e.IsDir() || !ok || topics[topic] {
			continue
		}
		dst := filepath.Join(dataDir, orphanDir, e.Name())
		for i := 1; ; i++ {
			if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
				break
			}
			dst = filepath.Join(dataDir, orphanDir, e.Name()+"."+strconv.Itoa(i))
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("devbroker: set aside %s: %w", e.Name(), err)
		}
		if err := os.Rename(filepath.Join(parts, e.Name()), dst); err != nil {
			return fmt.Errorf("devbroker: set aside %s: %w", e.Name(), err)
		}
		log.Warn("dev broker: partition directory of an unknown topic set aside (a crash of an older broker lost the topic); it is not served",
			"topic", topic, "moved_to", dst)
	}
	return nil
}

// partitionTopic parses kfake's partition directory name,
// <url.PathEscape(topic)>-<partition>.
func partitionTopic(name string) (string, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", false
	}
	if _, err := strconv.ParseUint(name[i+1:], 10, 31); err != nil {
		return "", false
	}
	topic, err := url.PathUnescape(name[:i])
	if err != nil {
		return "", false
	}
	return topic, true
}

// knownTopics reads the topic names of kfake's topics.json in dataDir; nil
// when there is none (a fresh directory, or one never started).
func knownTopics(dataDir string) (map[string]bool, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, "topics.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devbroker: data directory %s: %w", dataDir, err)
	}
	var known struct {
		Topics []struct {
			Name string `json:"name"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(raw, &known); err != nil {
		return nil, fmt.Errorf("devbroker: data directory %s: topics.json: %w", dataDir, err)
	}
	topics := map[string]bool{}
	for _, t := range known.Topics {
		topics[t.Name] = true
	}
	return topics, nil
}
