// Import page: refuse a package larger than the server accepts as soon as it is chosen,
// rather than after uploading it. The server checks again whatever this says.

const form = document.getElementById("import-form");
const input = form?.querySelector("input[type=file]");

function check() {
  const file = input.files[0];
  const limit = Number(form.dataset.maxBytes);
  const tooLarge = file && file.size > limit;
  input.setCustomValidity(
    tooLarge ? `This package is larger than the ${form.dataset.maxLabel} the import page accepts.` : "",
  );
  if (tooLarge) input.reportValidity();
}

if (input) input.addEventListener("change", check);
