// The registration form: three labelled fields, each with its own error line (tied by aria-describedby), and a
// form-level alert for answers that are about no one field.

import { element } from './dom';
import { Field, FieldProblem, FIELDS, Form, LABELS, RegistrationError, validate } from './registration';

const AUTOCOMPLETE: Record<Field, string> = {
  firstName: 'given-name',
  lastName: 'family-name',
  email: 'email',
};

export class FormView {
  readonly root: HTMLFormElement;
  private readonly inputs = {} as Record<Field, HTMLInputElement>;
  private readonly errors = {} as Record<Field, HTMLElement>;
  private readonly alert: HTMLElement;
  private readonly submit: HTMLButtonElement;

  /** `onSubmit` gets a form that passed the client-side checks, and throws `RegistrationError` if the API refused. */
  constructor(onSubmit: (form: Form) => Promise<void>) {
    this.root = element('form', { class: 'register', novalidate: true });
    for (const field of FIELDS) {
      const input = element('input', {
        id: field,
        name: field,
        type: field === 'email' ? 'email' : 'text',
        autocomplete: AUTOCOMPLETE[field],
        required: true,
        'aria-describedby': `${field}-error`,
      });
      const error = element('p', { id: `${field}-error`, class: 'field-error' });
      this.inputs[field] = input;
      this.errors[field] = error;
      this.root.append(element('label', { for: field }, LABELS[field]), input, error);
    }
    this.submit = element('button', { type: 'submit', class: 'primary' }, 'Start chat');
    this.alert = element('p', { class: 'form-error', role: 'alert' });
    this.root.append(this.submit, this.alert);
    this.root.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.handleSubmit(onSubmit);
    });
  }

  private async handleSubmit(onSubmit: (form: Form) => Promise<void>): Promise<void> {
    const form = Object.fromEntries(FIELDS.map((field) => [field, this.inputs[field].value])) as Form;
    this.clearErrors();
    const problems = validate(form);
    if (problems.length > 0) {
      this.showProblems(problems);
      return;
    }
    this.submit.disabled = true;
    this.submit.textContent = 'Starting…';
    try {
      await onSubmit(form);
    } catch (error) {
      if (!(error instanceof RegistrationError)) throw error;
      if (error.field !== null) {
        this.showProblems([{ field: error.field, code: error.code, message: error.message }]);
      } else {
        this.showAlert(error.message);
      }
    } finally {
      this.submit.disabled = false;
      this.submit.textContent = 'Start chat';
    }
  }

  private showProblems(problems: readonly FieldProblem[]): void {
    for (const { field, code, message } of problems) {
      this.inputs[field].setAttribute('aria-invalid', 'true');
      this.errors[field].textContent = message;
      this.errors[field].dataset.code = code;
    }
    this.inputs[problems[0]!.field].focus();
  }

  /** A message about the whole form (rate limit, service down, an expired session that led back here). */
  showAlert(message: string): void {
    this.alert.textContent = message;
  }

  clearErrors(): void {
    for (const field of FIELDS) {
      this.inputs[field].removeAttribute('aria-invalid');
      this.errors[field].textContent = '';
      delete this.errors[field].dataset.code;
    }
    this.alert.textContent = '';
  }

  /** Where focus goes when the form is shown: the first field that needs attention. */
  focus(): void {
    const invalid = FIELDS.find((field) => this.inputs[field].getAttribute('aria-invalid') === 'true');
    this.inputs[invalid ?? 'firstName'].focus();
  }
}
