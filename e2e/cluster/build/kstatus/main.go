// kstatus prints the verdict of kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status), the
// library Flux and kpt wait on, for Kubernetes objects: Current, InProgress, Failed,
// Terminating or Unknown, and its message.
//
//	kstatus [OBJECT.yaml|OBJECT.json ...]   (stdin when none is named)
//	kubectl get inferenceservice digits -o json | kstatus
//
// Each input holds one object or a List (kubectl get -o json of several). Prints one JSON
// line {"kind", "name", "status", "message"} per object.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// objects decodes as client-go does (integers become int64, which kstatus's field lookups
// require), whether the input is YAML or JSON.
func objects(raw []byte) ([]*unstructured.Unstructured, error) {
	data, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	decoded, _, err := unstructured.UnstructuredJSONScheme.Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	switch object := decoded.(type) {
	case *unstructured.Unstructured:
		return []*unstructured.Unstructured{object}, nil
	case *unstructured.UnstructuredList:
		found := make([]*unstructured.Unstructured, 0, len(object.Items))
		for i := range object.Items {
			found = append(found, &object.Items[i])
		}
		return found, nil
	}
	return nil, fmt.Errorf("not an object: %T", decoded)
}

func check(raw []byte) error {
	found, err := objects(raw)
	if err != nil {
		return err
	}
	for _, object := range found {
		result, err := status.Compute(object)
		if err != nil {
			return err
		}
		line, err := json.Marshal(verdict{object.GetKind(), object.GetName(), result.Status.String(), result.Message})
		if err != nil {
			return err
		}
		fmt.Println(string(line))
	}
	return nil
}

func main() {
	inputs := os.Args[1:]
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	for _, path := range inputs {
		var raw []byte
		var err error
		if path == "-" {
			raw, err = io.ReadAll(os.Stdin)
		} else {
			raw, err = os.ReadFile(path)
		}
		if err == nil {
			err = check(raw)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
}
